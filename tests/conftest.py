"""Shared test configuration.

Hypothesis profiles live here (STYLE.md): ``dev`` is quick for the edit-test loop, ``ci``
digs deeper. Pick one with the HYPOTHESIS_PROFILE environment variable (default ``dev``);
``nox`` passes it through and ``.ci/run`` sets ``ci``.

``engine_for`` gives every suite that needs SQL stores the same engines (see
``tests/db_backends.py`` for which databases run and when they skip).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from db_backends import backend_url
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def engine_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Engine]]:
    """One engine per SQL backend for the whole session, built on first use with its
    schema upgraded (idempotently: databases are shared with concurrent runs, and nothing
    is ever dropped), disposed at the end."""
    from adapters.sql import make_engine, upgrade_schema  # noqa: PLC0415 - SQL suites only

    engines: dict[str, Engine] = {}

    def get(backend: str) -> Engine:
        if backend not in engines:
            engine = make_engine(backend_url(backend, tmp_path_factory.mktemp(f"db-{backend}")))
            upgrade_schema(engine)
            engines[backend] = engine
        return engines[backend]

    yield get
    for engine in engines.values():
        engine.dispose()
