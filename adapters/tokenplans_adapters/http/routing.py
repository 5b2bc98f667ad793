"""Routes whose path parameters (``{subject}``, ``{hold_id}``) may hold any text, ``/`` included.

A subject is whatever the identity provider says (a JWT ``sub``), so it may hold ``/``,
``%``, spaces or any Unicode, and so may a hold id the client chose. The server decodes
``%2F`` in the path before routing, which makes ``/api/admin/accounts/a%2Fb/ledger`` look
like five segments after ``accounts``; :class:`RawPathRoute` therefore matches on the
*raw* path (ASGI's ``raw_path``) and percent-decodes each parameter's segment exactly
once. A literal ``/`` still separates segments, so ``a/b`` and ``a%2Fb`` never address
the same account (or hold).

It also holds the route table's types: an :class:`Operation` is one method on one path
with its endpoint and its OpenAPI fragment, and a :class:`Resource` is what one module of
:mod:`.resources` contributes to the app (operations, their schemas, undocumented routes).
The fragment is also what an operation accepts in the query string: a query parameter it
does not document is a 422 on every route, checked here once rather than in each handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

import attrs
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from tokenplans import PlanCatalog

from .auth import principal_of
from .bodies import check_query

Endpoint = Callable[[Request], Awaitable[Response]]


@attrs.frozen
class Operation:
    """One method on one path: its endpoint and what the OpenAPI document says about it.
    The route's name is the endpoint's unless ``name`` says otherwise."""

    method: str
    path: str
    endpoint: Endpoint
    spec: Mapping[str, Any]
    name: str | None = None

    @property
    def query_parameters(self) -> frozenset[str]:
        """The query parameters the operation documents: the only ones it accepts."""
        return frozenset(
            parameter["name"]
            for parameter in self.spec.get("parameters", ())
            if parameter.get("in") == "query"
        )

    def checked_endpoint(self) -> Endpoint:
        """The endpoint behind the checks every operation makes first: a secured one
        answers a missing or invalid credential with the 401 before anything else, then
        any query parameter the operation does not document is a 422 (as an unknown body
        field is), so a misspelt ``?limt=5`` is never silently ignored."""
        endpoint, allowed, secured = self.endpoint, self.query_parameters, "security" in self.spec

        async def checked(request: Request) -> Response:
            if secured:
                principal_of(request)
            check_query(request, allowed)
            return await endpoint(request)

        return checked


def route_of(operations: Sequence[Operation]) -> Route:
    """One route serving ``operations`` (all on one path, each its own method), so that
    a method the path does not take is a 405 whose ``Allow`` lists every method it does.
    A :class:`RawPathRoute` when the path has parameters, else a plain route."""
    path = operations[0].path
    endpoints = {op.method: op.checked_endpoint() for op in operations}
    if len(endpoints) != len(operations) or any(op.path != path for op in operations):
        raise ValueError(f"operations on {path!r} must be one per method on that one path")
    names = [op.name or op.endpoint.__name__ for op in operations]
    endpoint = endpoints[operations[0].method] if len(operations) == 1 else _by_method(endpoints)
    kind = RawPathRoute if _parameters(path) else Route
    return kind(path, endpoint, methods=list(endpoints), name="|".join(names))


def _by_method(endpoints: Mapping[str, Endpoint]) -> Endpoint:
    """The endpoint of the request's method (``HEAD`` is served as ``GET``)."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return endpoint


def _no_schemas(_catalog: PlanCatalog) -> Mapping[str, Any]:
    return {}


@attrs.frozen
class Resource:
    """What one resource module adds to the app: its documented operations, the
    component schemas they refer to (some depend on the catalog being served), and any
    routes the document does not describe (static files)."""

    operations: Sequence[Operation]
    schemas: Callable[[PlanCatalog], Mapping[str, Any]] = _no_schemas
    routes: Sequence[BaseRoute] = ()

    def all_routes(self) -> list[BaseRoute]:
        """One route per path (its operations' methods together), then the others."""
        by_path: dict[str, list[Operation]] = {}
        for op in self.operations:
            by_path.setdefault(op.path, []).append(op)
        return [*(route_of(ops) for ops in by_path.values()), *self.routes]


def _parameters(path: str) -> list[str]:
    """The names of the path's parameter segments (``{name}``), in order."""
    return [
        segment[1:-1]
        for segment in path.strip("/").split("/")
        if segment.startswith("{") and segment.endswith("}")
    ]


class RawPathRoute(Route):
    """A :class:`~starlette.routing.Route` whose ``{name}`` segments are taken from the raw
    path (percent-encode them, ``/`` as ``%2F``); an empty one matches nothing. Without a
    ``raw_path`` in the scope (a server that sends none) it matches as a plain route."""

    def __init__(
        self, path: str, endpoint: Callable[..., Any], *, methods: list[str], name: str
    ) -> None:
        super().__init__(path, endpoint, methods=methods, name=name)
        self.template = path.strip("/").split("/")
        if not _parameters(path):
            raise ValueError(f"{path!r} has no parameter segment")

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw_path = scope.get("raw_path") if scope["type"] == "http" else None
        if not isinstance(raw_path, bytes):
            return super().matches(scope)
        params = self._parameters_in(scope, raw_path.split(b"/"))
        if params is None:
            return Match.NONE, {}
        child_scope = {
            "endpoint": self.endpoint,
            "path_params": {**scope.get("path_params", {}), **params},
        }
        if self.methods and scope["method"] not in self.methods:
            return Match.PARTIAL, child_scope
        return Match.FULL, child_scope

    def _parameters_in(self, scope: Scope, raw_segments: list[bytes]) -> dict[str, str] | None:
        """The parameters when the raw path's last segments match this route, else None."""
        if len(raw_segments) <= len(self.template):
            return None
        prefix, tail = raw_segments[: -len(self.template)], raw_segments[-len(self.template) :]
        # Before the route's own segments comes the mount prefix (when the server puts
        # it in the path at all) and nothing else.
        mount = unquote_to_bytes(b"/".join(prefix)).decode("utf-8", "replace")
        if mount not in ("", scope.get("root_path", "")):
            return None
        params: dict[str, str] = {}
        for expected, segment in zip(self.template, tail, strict=True):
            decoded = unquote_to_bytes(segment)
            if expected.startswith("{") and expected.endswith("}"):
                if not decoded:
                    return None
                # Not UTF-8: kept as lone surrogates, which the service refuses (422).
                params[expected[1:-1]] = decoded.decode("utf-8", "surrogateescape")
            elif decoded != expected.encode():
                return None
        return params
