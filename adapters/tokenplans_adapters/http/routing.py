"""Routes whose ``{subject}`` is any subject a user can have, ``/`` included.

A subject is whatever the identity provider says (a JWT ``sub``), so it may hold ``/``,
``%``, spaces or any Unicode. The server decodes ``%2F`` in the path before routing,
which makes ``/api/admin/accounts/a%2Fb/ledger`` look like five segments after
``accounts``; :class:`SubjectRoute` therefore matches on the *raw* path (ASGI's
``raw_path``) and percent-decodes the subject's segment exactly once. A literal ``/``
still separates segments, so ``a/b`` and ``a%2Fb`` never address the same account.

It also holds the route table's types: an :class:`Operation` is one method on one path
with its endpoint and its OpenAPI fragment, and a :class:`Resource` is what one module of
:mod:`.resources` contributes to the app (operations, their schemas, undocumented routes).
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

SUBJECT = "{subject}"
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

    def route(self) -> Route:
        """A :class:`SubjectRoute` when the path holds ``{subject}``, else a plain route."""
        kind = SubjectRoute if SUBJECT in self.path else Route
        return kind(
            self.path,
            self.endpoint,
            methods=[self.method],
            name=self.name or self.endpoint.__name__,
        )


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
        return [*(op.route() for op in self.operations), *self.routes]


class SubjectRoute(Route):
    """A :class:`~starlette.routing.Route` with one ``{subject}`` segment taken from the
    raw path (percent-encode it, ``/`` as ``%2F``). Without a ``raw_path`` in the scope
    (a server that sends none) it matches as a plain route."""

    def __init__(
        self, path: str, endpoint: Callable[..., Any], *, methods: list[str], name: str
    ) -> None:
        super().__init__(path, endpoint, methods=methods, name=name)
        self.template = path.strip("/").split("/")
        if self.template.count(SUBJECT) != 1:
            raise ValueError(f"{path!r} must have exactly one {SUBJECT} segment")

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw_path = scope.get("raw_path") if scope["type"] == "http" else None
        if not isinstance(raw_path, bytes):
            return super().matches(scope)
        subject = self._subject_in(scope, raw_path.split(b"/"))
        if not subject:
            return Match.NONE, {}
        child_scope = {
            "endpoint": self.endpoint,
            "path_params": {**scope.get("path_params", {}), "subject": subject},
        }
        if self.methods and scope["method"] not in self.methods:
            return Match.PARTIAL, child_scope
        return Match.FULL, child_scope

    def _subject_in(self, scope: Scope, raw_segments: list[bytes]) -> str | None:
        """The subject when the raw path's last segments match this route, else None."""
        if len(raw_segments) <= len(self.template):
            return None
        prefix, tail = raw_segments[: -len(self.template)], raw_segments[-len(self.template) :]
        # Before the route's own segments comes the mount prefix (when the server puts
        # it in the path at all) and nothing else.
        mount = unquote_to_bytes(b"/".join(prefix)).decode("utf-8", "replace")
        if mount not in ("", scope.get("root_path", "")):
            return None
        subject = None
        for expected, segment in zip(self.template, tail, strict=True):
            decoded = unquote_to_bytes(segment)
            if expected == SUBJECT:
                # Not UTF-8: kept as lone surrogates, which the service refuses (422).
                subject = decoded.decode("utf-8", "surrogateescape")
            elif decoded != expected.encode():
                return None
        return subject
