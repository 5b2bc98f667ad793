"""Helpers shared by the storage tests (a plain module, so spawned worker processes can
import it): fresh subjects, services over a store, whole-ledger reads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from tokenplans import (
    AccountStore,
    LedgerEntry,
    PlanCatalog,
    Principal,
    TokenService,
)
from tokenplans.testing import SettableClock

#: Microseconds on purpose: every store must give them back exactly.
MID_JANUARY = datetime(2026, 1, 15, 12, 0, 0, 123_456, tzinfo=UTC)
ADMIN = Principal("admin-ops", frozenset({"tokenplans:admin"}))


def new_subject(label: str = "user") -> str:
    """A subject no other test (or concurrent test run on a shared database) uses."""
    return f"{label}-{uuid.uuid4()}"


def service_over(
    store: AccountStore, clock: SettableClock | None = None, catalog: PlanCatalog | None = None
) -> TokenService:
    return TokenService(
        store,
        PlanCatalog.default() if catalog is None else catalog,
        SettableClock(MID_JANUARY) if clock is None else clock,
    )


def whole_ledger(store: AccountStore, subject: str, page: int = 200) -> list[LedgerEntry]:
    """Every entry of ``subject``, oldest first, read page by page through the cursor."""
    entries: list[LedgerEntry] = []
    before: int | None = None
    while True:
        chunk: Sequence[LedgerEntry] = store.history(subject, before_version=before, limit=page)
        entries.extend(chunk)
        if len(chunk) < page:
            return entries[::-1]
        before = chunk[-1].version
