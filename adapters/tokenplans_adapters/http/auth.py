"""Bearer credentials to principals, as a Starlette ``AuthenticationBackend`` over the
identity port: the app never knows how a credential is checked (JWT or otherwise).

The backend never refuses a request itself. Public routes (health, plans, docs) answer
whatever the ``Authorization`` header holds; routes that need a principal call
:func:`principal_of` (:func:`require_principal`), which raises
:class:`tokenplans.AuthenticationError` for a missing, non-Bearer or rejected credential
alike, so every cause gets the same 401.

A Starlette host uses the same pieces for its own routes: ``AuthenticationMiddleware``
with :class:`BearerBackend`, then :func:`require_principal` or :func:`require_admin` in an
endpoint, and :func:`~tokenplans_adapters.http.errors.install_error_handlers` for the answers.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    UnauthenticatedUser,
)
from starlette.requests import HTTPConnection

import tokenplans
from tokenplans import IdentityProvider, Principal
from tokenplans.ports import BlockingHint, KnowsCredentials
from tokenplans_adapters.http.offload import in_thread


class PrincipalUser(BaseUser):
    """The authenticated caller, as Starlette's ``request.user``."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.subject

    @property
    def identity(self) -> str:
        return self.principal.subject


class BearerBackend(AuthenticationBackend):
    """``Authorization: Bearer <credential>`` checked by an :class:`IdentityProvider`.

    A provider runs in the thread pool unless it says ``may_block = False``
    (:class:`tokenplans.ports.BlockingHint`): a JWKS-backed one may fetch keys over the
    network on a cache miss, which must not stall the event loop, but checking an HMAC or
    RSA signature costs less CPU than the hop to a worker thread and back
    (``benchmarks/http.py`` measures both). A provider that may block but offers
    ``known(credential)`` (:class:`tokenplans.ports.KnowsCredentials`: a principal it
    verified before, or ``None``, without I/O, as
    :class:`~tokenplans_adapters.jwt_identity.JwtIdentity` does) is asked that first, on
    the loop, and hops only for a credential it does not know.
    """

    def __init__(self, identity: IdentityProvider) -> None:
        self.identity = identity
        self._inline = isinstance(identity, BlockingHint) and identity.may_block is False
        self._known: Callable[[str], Principal | None] | None = (
            identity.known if isinstance(identity, KnowsCredentials) else None
        )

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if header is None:
            return None
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return AuthCredentials(), UnauthenticatedUser()
        try:
            if self._inline:
                principal = self.identity.authenticate(credential)
            elif self._known is not None and (known := self._known(credential)) is not None:
                principal = known
            else:
                principal = await in_thread(self.identity.authenticate, credential)
        except tokenplans.AuthenticationError:
            return AuthCredentials(), UnauthenticatedUser()
        return AuthCredentials(sorted(principal.scopes)), PrincipalUser(principal)


def principal_of(conn: HTTPConnection) -> Principal:
    """The caller's principal, or :class:`tokenplans.AuthenticationError` (-> 401)."""
    user = conn.scope.get("user")
    if isinstance(user, PrincipalUser):
        return user.principal
    raise tokenplans.AuthenticationError("missing or invalid bearer credential")


#: The public name of :func:`principal_of`, for a host's own endpoints.
require_principal = principal_of


def check_admin(principal: Principal) -> Principal:
    """``principal`` if it has the admin scope, else
    :class:`tokenplans.PermissionDeniedError` (-> 403, reason ``admin_only``)."""
    if not principal.is_admin:
        raise tokenplans.PermissionDeniedError(
            "admin_only", f"this route needs the {tokenplans.ADMIN_SCOPE} scope"
        )
    return principal


def require_admin(conn: HTTPConnection) -> Principal:
    """The caller's principal if it is an admin's (:func:`check_admin`), or
    :class:`tokenplans.AuthenticationError` (-> 401) without a valid credential."""
    return check_admin(principal_of(conn))


def identity_of(app: Starlette) -> IdentityProvider:
    """The identity provider an app made by ``create_app`` authenticates with, so that a
    host's routes check credentials exactly as the app's own do."""
    for middleware in app.user_middleware:
        backend = middleware.kwargs.get("backend")
        if isinstance(backend, BearerBackend):
            return backend.identity
    raise TypeError("not a tokenplans app: it authenticates with no BearerBackend")


def admin_of(conn: HTTPConnection) -> tuple[Principal, str]:
    """The admin principal and the path's ``{subject}``, for the admin namespace's routes.
    That namespace is admin-only as a whole, even for a user's own account: users have
    their own routes (:class:`tokenplans.PermissionDeniedError` -> 403 otherwise)."""
    principal = check_admin(principal_of(conn))
    subject: str = conn.path_params["subject"]
    return principal, subject
