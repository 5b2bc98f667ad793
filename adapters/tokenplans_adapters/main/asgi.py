"""The ASGI factory for uvicorn and other servers:
``uvicorn --factory tokenplans_adapters.main.asgi:create``.

A factory rather than a module-level ``app`` so that importing this module does nothing:
each worker process calls :func:`create` once, reading its settings from the environment
(which ``tokenplans serve`` prepares for all its workers alike).
"""

from __future__ import annotations

from starlette.applications import Starlette

from tokenplans_adapters.http import offload

from .app import build_app, store_threads
from .config import Settings


def create() -> Starlette:
    """A new app configured from the environment and ``.env``, in a process that runs its
    storage calls on as many threads as the database pool keeps connections."""
    settings = Settings.from_env()
    app = build_app(settings)
    offload.use_threads(store_threads(settings))
    return app
