"""The server's logging: uvicorn's own configuration plus tokenplans' loggers.

uvicorn configures only its ``uvicorn.*`` loggers, so without this the adapters' INFO
lines (why a token was refused) were dropped and their WARNINGs (why a request got a
503) came out bare. ``tokenplans serve`` passes :func:`uvicorn_log_config` to uvicorn;
under your own ``uvicorn --factory ...``, give it ``--log-config`` with the same loggers.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import DefaultFormatter

from tokenplans_adapters.http.refusals import escaped

#: Every adapter logs under ``adapters.*``: ``tokenplans_adapters.http`` (503 causes, server errors)
#: and ``tokenplans_adapters.jwt_identity`` (refused tokens, JWKS fetch failures) above all.
LOGGER = "tokenplans_adapters"


class EscapingFormatter(DefaultFormatter):
    """uvicorn's formatter, with each message :func:`~tokenplans_adapters.http.errors.escaped`:
    whatever a client managed to put into a message (a newline, a control character, a
    lone surrogate), a record is one line, and a traceback below it stays as it is.
    The adapters escape client text where they log it; this keeps any line that
    escaped them (another library's) from forging the next one."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escaped(record.message)
        return super().formatMessage(record)


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's default ``log_config`` with the ``adapters`` loggers at ``level``, on
    stderr beside uvicorn's own lines and named, so a line says where it comes from."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["tokenplans"] = {
        "()": f"{__name__}.EscapingFormatter",
        "fmt": "%(levelprefix)s %(name)s: %(message)s",
        "use_colors": None,
    }
    config["handlers"]["tokenplans"] = {
        "formatter": "tokenplans",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"][LOGGER] = {"handlers": ["tokenplans"], "level": level, "propagate": False}
    return config
