"""The tokenplans HTTP API: a Starlette ASGI app over the core (README: HTTP API).

``create_app(service, identity, ...)`` returns the app; serve it with any ASGI server or
mount it in a host Starlette/FastAPI application. A Starlette host authenticates its own
routes the same way with :class:`BearerBackend` (under Starlette's
``AuthenticationMiddleware``), :func:`require_principal` and :func:`require_admin`, and
answers the core's errors as tokenplans does after :func:`install_error_handlers`
(README: "Inside FastAPI").
"""

from .app import create_app
from .auth import BearerBackend, PrincipalUser, identity_of, require_admin, require_principal
from .errors import install_error_handlers

__all__ = [
    "BearerBackend",
    "PrincipalUser",
    "create_app",
    "identity_of",
    "install_error_handlers",
    "require_admin",
    "require_principal",
]
