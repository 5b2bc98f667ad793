"""The composition root: settings, the wired ASGI app and the ``tokenplans`` command.

The only package that imports several adapters (docs/architecture.md).
"""

from __future__ import annotations

from .app import build_app, build_catalog, build_identity
from .config import ConfigError, Settings

__all__ = ["ConfigError", "Settings", "build_app", "build_catalog", "build_identity"]
