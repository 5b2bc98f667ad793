"""The token use cases adapters call: usage, set plan, consume, grant, history.

Each takes the :class:`Principal` asking, checks its permission, and changes one account
through the shared update loop: it fetches the facts, a pure rule decides.
"""

from __future__ import annotations

from tokenplans._ports import AccountStore, Clock
from tokenplans._rules.decisions import decide_debit, decide_grant, decide_plan_change
from tokenplans._rules.permissions import check_can_debit, check_can_grant, check_can_read
from tokenplans._values.accounts import Account, Usage
from tokenplans._values.ledger import DebitReceipt
from tokenplans._values.limits import (
    check_amount,
    check_cursor,
    check_idempotency_key,
    check_page_size,
    check_subject,
)
from tokenplans._values.plans import PlanCatalog
from tokenplans._values.principal import Principal
from tokenplans._values.results import HistoryPage, PlanChange

from .loop import AccountUpdater, no_facts


class TokenService:
    """Plans and quotas for many subjects, over one store, one catalog and one clock."""

    def __init__(
        self,
        store: AccountStore,
        catalog: PlanCatalog,
        clock: Clock,
        *,
        max_attempts: int = 100,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self._accounts = AccountUpdater(store, catalog, clock, max_attempts=max_attempts)

    # -- reads ---------------------------------------------------------------------

    def account(self, subject: str) -> Account:
        """The subject's snapshot as of now, with due resets and expiries applied; an
        unknown subject reads as a fresh default account. Writes nothing."""
        return self._accounts.account(subject)

    def usage(self, principal: Principal, subject: str | None = None) -> Usage:
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        return Usage.of(self.account(subject))

    def history(
        self,
        principal: Principal,
        subject: str | None = None,
        *,
        cursor: str | None = None,
        limit: int = 50,
    ) -> HistoryPage:
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        check_page_size(limit)
        before = check_cursor(cursor)
        entries = self.store.history(check_subject(subject), before_version=before, limit=limit)
        more = len(entries) == limit and entries[-1].version > 1
        return HistoryPage(entries, str(entries[-1].version) if more else None)

    # -- changes -------------------------------------------------------------------

    def set_plan(
        self,
        principal: Principal,
        plan_id: str,
        *,
        reset_used: bool = False,
        subject: str | None = None,
    ) -> PlanChange:
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        target = self.catalog.get(plan_id)
        return self._accounts.update(
            subject,
            lambda account, now, _: decide_plan_change(
                account,
                now,
                principal=principal,
                target=target,
                catalog=self.catalog,
                reset_used=reset_used,
            ),
            no_facts,
        )

    def consume(
        self,
        principal: Principal,
        amount: int,
        *,
        idempotency_key: str | None = None,
        subject: str | None = None,
    ) -> DebitReceipt:
        """Debit ``amount`` tokens, or raise :class:`InsufficientTokensError` changing
        nothing. With a key, a retry returns the first receipt (``replayed=True``)."""
        subject = principal.subject if subject is None else subject
        check_can_debit(principal, subject)
        check_amount(amount)
        key = check_idempotency_key(idempotency_key)

        def first_receipt() -> DebitReceipt | None:
            return None if key is None else self.store.find_receipt(subject, key)

        return self._accounts.update(
            subject,
            lambda account, now, first: decide_debit(
                account,
                now,
                amount=amount,
                idempotency_key=key,
                actor=principal.subject,
                first=first,
            ),
            first_receipt,
        )

    def grant(self, principal: Principal, subject: str, amount: int) -> Usage:
        """Admin only: add tokens to this period's quota."""
        check_can_grant(principal)
        check_amount(amount)
        return self._accounts.update(
            subject,
            lambda account, now, _: decide_grant(
                account, now, amount=amount, actor=principal.subject
            ),
            no_facts,
        )
