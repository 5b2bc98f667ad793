"""The ASGI factory for uvicorn and other servers:
``uvicorn --factory tokenplans_adapters.main.asgi:create``.

A factory rather than a module-level ``app`` so that importing this module does nothing:
each worker process calls :func:`create` once, reading its settings from the environment
(which ``tokenplans serve`` prepares for all its workers alike).
"""

from __future__ import annotations

from starlette.applications import Starlette

from .app import build_app
from .config import Settings


def create() -> Starlette:
    """A new app configured from the environment and ``.env``."""
    return build_app(Settings.from_env())
