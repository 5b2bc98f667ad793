"""tokenplans inside a FastAPI app (extra ``fastapi``; README: "Inside FastAPI").

``mount_tokenplans(host, create_app(service, identity), prefix="/billing")`` mounts the
billing API, shows its routes in the host's ``/docs`` and returns the dependencies for
the host's own routes: ``current_principal``, ``admin_principal`` and ``charge(amount)``.
``install_error_handlers(host)`` (run by the mount) answers the core's errors raised in
host routes with tokenplans' own JSON.

This adapter builds on ``tokenplans_adapters.http`` (FastAPI is Starlette): it reuses that app's
authentication and error mapping rather than keeping copies that could drift.
"""

from tokenplans_adapters.http import install_error_handlers

from .integration import DEFAULT_COMPONENT_PREFIX, TokenplansDependencies, mount_tokenplans
from .openapi import merge_document

__all__ = [
    "DEFAULT_COMPONENT_PREFIX",
    "TokenplansDependencies",
    "install_error_handlers",
    "merge_document",
    "mount_tokenplans",
]
