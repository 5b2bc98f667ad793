"""The tokenplans HTTP API: a Starlette ASGI app over the core (README: HTTP API).

``create_app(service, identity, ...)`` returns the app; serve it with any ASGI server or
mount it in a host Starlette/FastAPI application.
"""

from .app import create_app

__all__ = ["create_app"]
