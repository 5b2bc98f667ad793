"""The token use cases adapters call: usage, history, set plan, consume, grant.

Each takes the :class:`Principal` asking first, then what is asked (a plan, an amount),
then keywords: ``subject`` (whose account; the principal's own when omitted) and the
options. Each checks who may do what (README, "How quotas work") and changes one account
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

from .call_shape import subject_by_keyword
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

    @subject_by_keyword("usage(principal, subject=...)")
    def usage(self, principal: Principal, *, subject: str | None = None) -> Usage:
        """The subject's usage as of now (the principal's own unless ``subject`` is given;
        another's needs an admin). Writes nothing."""
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        return Usage.of(self.account(subject))

    @subject_by_keyword("history(principal, subject=..., cursor=..., limit=...)")
    def history(
        self,
        principal: Principal,
        *,
        subject: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> HistoryPage:
        """One page of the subject's ledger, newest first, at most ``limit`` (1-200)
        entries; pass the page's ``next_cursor`` back as ``cursor`` for the older ones."""
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        check_page_size(limit)
        before = check_cursor(cursor)
        entries = self.store.history(check_subject(subject), before_version=before, limit=limit)
        more = len(entries) == limit and entries[-1].version > 1
        return HistoryPage(entries, str(entries[-1].version) if more else None)

    # -- changes -------------------------------------------------------------------

    @subject_by_keyword("set_plan(principal, plan_id, subject=..., reset_used=...)")
    def set_plan(
        self,
        principal: Principal,
        plan_id: str,
        *,
        subject: str | None = None,
        reset_used: bool = False,
    ) -> PlanChange:
        """Move the subject to ``plan_id``: an upgrade carries the remaining tokens over,
        the same plan is confirmed, a downgrade keeps the usage. A user may only confirm or
        step down; upgrades and ``reset_used`` need an admin (or, for a paid plan, a
        payment). A confirmation that changes nothing writes nothing."""
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

    @subject_by_keyword("consume(principal, amount, subject=..., idempotency_key=...)")
    def consume(
        self,
        principal: Principal,
        amount: int,
        *,
        subject: str | None = None,
        idempotency_key: str | None = None,
    ) -> DebitReceipt:
        """Debit ``amount`` tokens, or raise :class:`InsufficientTokensError` changing
        nothing. With a key, a retry returns the first receipt (``replayed=True``). Keys
        belong to the subject *and* the caller: the same key sent by the user and by an
        admin acting for it are two different requests."""
        subject = principal.subject if subject is None else subject
        check_can_debit(principal, subject)
        check_amount(amount)
        key = check_idempotency_key(idempotency_key)

        def first_receipt() -> DebitReceipt | None:
            return None if key is None else self.store.find_receipt(subject, principal.subject, key)

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

    @subject_by_keyword("grant(principal, amount, subject=...)")
    def grant(self, principal: Principal, amount: int, *, subject: str | None = None) -> Usage:
        """Admin only: add ``amount`` tokens to the subject's quota for this period; they
        lapse with it."""
        subject = principal.subject if subject is None else subject
        check_can_grant(principal)
        check_amount(amount)
        return self._accounts.update(
            subject,
            lambda account, now, _: decide_grant(
                account, now, amount=amount, actor=principal.subject
            ),
            no_facts,
        )
