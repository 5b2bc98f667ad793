"""Who is asking: a subject and its scopes."""

from __future__ import annotations

import attrs

ADMIN_SCOPE = "tokenplans:admin"


@attrs.frozen
class Principal:
    """Who is asking: the credential's subject and its scopes."""

    subject: str
    scopes: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes
