"""Holds on every store (in-memory, SQLite, MariaDB, PostgreSQL): the contract through the
use cases and through the port, and, on SQL, what only a database shows (the rows as
plain SQL sees them, the open holds read as one indexed query).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import attrs
import pytest
from sqlalchemy import Engine, bindparam, text
from storage_support import (
    ADMIN,
    MID_JANUARY,
    new_subject,
    recorded_statements,
    service_over,
    whole_ledger,
)

from tokenplans import (
    MAX_OPEN_HOLDS,
    AccountStore,
    EntryKind,
    Estimate,
    Hold,
    HoldConflictError,
    HoldStatus,
    InvalidRequestError,
    ModelUsage,
    PlanCatalog,
    PriceBook,
    Principal,
    TooManyHoldsError,
    fold,
)
from tokenplans._rules.quota import open_account
from tokenplans.ports import Commit, HoldWrite, WriteConflictError
from tokenplans.testing import SettableClock
from tokenplans_adapters.sql import SqlAccountStore, make_engine, upgrade_schema
from tokenplans_adapters.sql.schema import ExactText

CATALOG = PlanCatalog.default()
SQL = [
    "sqlite",
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def _folds(store: AccountStore, subject: str) -> None:
    assert fold(whole_ledger(store, subject)) == store.load(subject)


# -- through the use cases ---------------------------------------------------------------


def test_reserve_settle_release_and_expiry_round_trip_on_every_store(store: AccountStore) -> None:
    clock = SettableClock(MID_JANUARY)
    tokens = service_over(store, clock)
    user = Principal(new_subject())
    subject = user.subject

    placed = tokens.reserve(user, 300, hold_id="call-é 1", ttl_seconds=60)
    assert store.find_hold(subject, "call-é 1") == placed
    assert store.outstanding(subject).holds == (placed,)
    assert store.load(subject).token_held == 300  # type: ignore[union-attr]
    settled = tokens.settle(user, "call-é 1", 450)
    assert store.find_hold(subject, "call-é 1") == settled
    assert (settled.settled, settled.overage, settled.closed_at) == (450, 0, MID_JANUARY)

    tokens.reserve(user, 100, hold_id="released")
    assert tokens.release(user, "released").status is HoldStatus.RELEASED
    tokens.reserve(user, 200, hold_id="expires", ttl_seconds=1)
    tokens.reserve(user, 50, hold_id="late", ttl_seconds=1)
    clock.advance(seconds=5)
    late = tokens.settle(user, "late", 40)
    assert late.late
    assert store.find_hold(subject, "expires").status is HoldStatus.EXPIRED  # type: ignore[union-attr]
    assert store.find_hold(subject, "late") == late
    assert store.outstanding(subject).holds == ()

    usage = tokens.usage(user)
    assert (usage.token_used, usage.token_held, usage.remaining) == (490, 0, 510)
    _folds(store, subject)
    kinds = [e.kind for e in whole_ledger(store, subject)]
    assert kinds.count(EntryKind.HOLD_PLACED) == 4
    assert kinds.count(EntryKind.HOLD_EXPIRED) == 2


def test_every_hold_answer_carries_the_usage_its_request_left_on_every_store(
    store: AccountStore,
) -> None:
    """The answers' usage is the account as the change (or read) left it: what reading
    the usage right after shows, with nothing else changing the account."""
    clock = SettableClock(MID_JANUARY)
    tokens = service_over(store, clock)
    user = Principal(new_subject())

    answers = [
        tokens.reserve(user, 300, hold_id="a"),
        tokens.reserve(user, 300, hold_id="a"),  # a replay changes nothing
        tokens.hold(user, "a"),
        tokens.settle(user, "a", 120),
        tokens.settle(user, "a", 120),
        tokens.reserve(user, 50, hold_id="b", ttl_seconds=1),
    ]
    clock.advance(seconds=5)
    answers.append(tokens.release(user, "b"))  # expired meanwhile: as it is

    for answer in answers[:-1]:
        assert answer.usage is not None
    held = [(a.usage.token_used, a.usage.token_held) for a in answers if a.usage]
    assert held == [(0, 300), (0, 300), (0, 300), (120, 0), (120, 0), (120, 50), (120, 0)]
    assert answers[-1].usage == tokens.usage(user)
    assert store.find_hold(user.subject, "a").usage is None  # type: ignore[union-attr]


def test_a_receipt_remembers_token_held_on_every_store(store: AccountStore) -> None:
    tokens = service_over(store)
    user = Principal(new_subject())
    tokens.reserve(user, 300)
    receipt = tokens.consume(user, 100, idempotency_key="k")
    assert receipt.usage.token_held == 300
    assert store.find_receipt(user.subject, user.subject, "k") == receipt


def test_hold_times_and_ids_round_trip_exactly(store: AccountStore) -> None:
    tokens = service_over(store)
    user = Principal(new_subject())
    ids = ["Call", "call", "call ", "ß", "x" * 255]
    for hold_id in ids:
        tokens.reserve(user, 1, hold_id=hold_id, ttl_seconds=7)
    holds = tokens.holds(user)
    assert sorted(h.hold_id for h in holds) == sorted(ids)
    assert {h.expires_at for h in holds} == {MID_JANUARY + timedelta(seconds=7)}
    assert {h.created_at for h in holds} == {MID_JANUARY}


def test_open_holds_come_oldest_first_and_only_the_subjects_own(store: AccountStore) -> None:
    clock = SettableClock(MID_JANUARY)
    tokens = service_over(store, clock)
    alice, bob = Principal(new_subject()), Principal(new_subject())
    for n in range(3):
        tokens.reserve(alice, 1, hold_id=f"z{n}")
        clock.advance(seconds=1)
    tokens.reserve(bob, 1, hold_id="z0")
    tokens.release(alice, "z1")
    assert [h.hold_id for h in store.outstanding(alice.subject).holds] == ["z0", "z2"]
    assert [h.hold_id for h in store.outstanding(bob.subject).holds] == ["z0"]


def test_subjects_with_expired_holds_and_the_sweep(store: AccountStore) -> None:
    clock = SettableClock(MID_JANUARY)
    tokens = service_over(store, clock)
    due, fresh = Principal(new_subject("due")), Principal(new_subject("fresh"))
    tokens.reserve(due, 10, ttl_seconds=10)
    tokens.reserve(fresh, 10, ttl_seconds=3600)
    clock.advance(seconds=10)
    found = store.subjects_with_expired_holds(clock.now(), limit=10**6)
    assert due.subject in found
    assert fresh.subject not in found
    swept = tokens.sweep_expired_holds(ADMIN, limit=10**6)
    assert due.subject in swept
    assert store.load(due.subject).token_held == 0  # type: ignore[union-attr]
    assert due.subject not in store.subjects_with_expired_holds(clock.now(), limit=10**6)
    _folds(store, due.subject)


# -- through the port --------------------------------------------------------------------


def _opened(store: AccountStore, subject: str) -> Commit:
    opened = open_account(subject, CATALOG, MID_JANUARY)
    store.commit(Commit(opened.account, 0, opened.entries))
    return Commit(opened.account, 1, ())


def _hold(subject: str, hold_id: str = "h", **changes: object) -> Hold:
    hold = Hold(subject, subject, hold_id, 5, MID_JANUARY, MID_JANUARY + timedelta(seconds=5))
    return attrs.evolve(hold, **changes)


def _bump(store: AccountStore, subject: str, *records: HoldWrite) -> None:
    """A commit that changes nothing but the version, carrying ``records``."""
    stored = store.load(subject)
    assert stored is not None
    opened = open_account(subject, CATALOG, MID_JANUARY).entries[0]
    after = attrs.evolve(stored, version=stored.version + 1)
    entry = attrs.evolve(opened, kind=EntryKind.GRANTED, quota_delta=0, after=after)
    store.commit(Commit(after, stored.version, (entry,), records))


def test_inserting_a_hold_id_already_stored_is_a_conflict_that_writes_nothing(
    store: AccountStore,
) -> None:
    subject = new_subject()
    _opened(store, subject)
    _bump(store, subject, HoldWrite(_hold(subject), None))
    before = store.load(subject)
    with pytest.raises(WriteConflictError):
        _bump(store, subject, HoldWrite(_hold(subject, amount=9), None))
    assert store.load(subject) == before
    assert store.find_hold(subject, "h") == _hold(subject)


def test_closing_a_hold_is_a_compare_and_write_on_its_status(store: AccountStore) -> None:
    subject = new_subject()
    _opened(store, subject)
    _bump(store, subject, HoldWrite(_hold(subject), None))
    released = _hold(subject, status=HoldStatus.RELEASED, closed_at=MID_JANUARY)
    _bump(store, subject, HoldWrite(released, HoldStatus.OPEN))
    before = store.load(subject)
    settled = _hold(subject, status=HoldStatus.SETTLED, settled=5, closed_at=MID_JANUARY)
    with pytest.raises(WriteConflictError):
        _bump(store, subject, HoldWrite(settled, HoldStatus.OPEN))  # it is released now
    with pytest.raises(WriteConflictError):
        _bump(store, subject, HoldWrite(_hold(subject, "missing"), HoldStatus.OPEN))
    assert store.load(subject) == before
    assert store.find_hold(subject, "h") == released


def test_a_replayed_flag_is_never_stored(store: AccountStore) -> None:
    subject = new_subject()
    _opened(store, subject)
    _bump(store, subject, HoldWrite(attrs.evolve(_hold(subject), replayed=True), None))
    found = store.find_hold(subject, "h")
    assert found is not None
    assert not found.replayed


def test_a_conflicting_settle_through_the_service_changes_nothing(store: AccountStore) -> None:
    tokens = service_over(store)
    user = Principal(new_subject())
    tokens.reserve(user, 10, hold_id="h")
    tokens.release(user, "h")
    before = store.load(user.subject), whole_ledger(store, user.subject)
    with pytest.raises(HoldConflictError):
        tokens.settle(user, "h", 10)
    assert (store.load(user.subject), whole_ledger(store, user.subject)) == before


# -- SQL only ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", SQL)
def test_a_hold_is_one_row_plain_sql_can_read(
    backend: str, engine_for: Callable[[str], Engine]
) -> None:
    engine = engine_for(backend)
    tokens = service_over(SqlAccountStore(engine, clock_source="process"))
    user = Principal(new_subject())
    tokens.reserve(user, 300, hold_id="call-1")
    tokens.settle(user, "call-1", 1200)
    by_subject = bindparam("s", type_=ExactText())
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT amount, status, settled, overage FROM tokenplans_holds"
                " WHERE subject = :s AND hold_id = 'call-1'"
            ).bindparams(by_subject),
            {"s": user.subject},
        ).one()
        snapshot = conn.execute(
            text(
                "SELECT token_used, token_held FROM tokenplans_accounts WHERE subject = :s"
            ).bindparams(by_subject),
            {"s": user.subject},
        ).one()
    assert tuple(row) == (300, "settled", 1200, 200)
    assert tuple(snapshot) == (1200, 0)


@pytest.mark.parametrize("backend", SQL)
def test_reading_usage_with_open_holds_is_two_queries_and_the_holds_one_indexed_read(
    backend: str, engine_for: Callable[[str], Engine]
) -> None:
    """The snapshot row, then the open holds in one range scan; closed holds and the
    ledger are never read, however many there are."""
    engine = engine_for(backend)
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store)
    user = Principal(new_subject())
    for n in range(30):
        tokens.reserve(user, 1, hold_id=f"closed-{n}")
        tokens.release(user, f"closed-{n}")
    with recorded_statements(engine) as plain:
        tokens.usage(user)
    tokens.reserve(user, 1, hold_id="open-1")
    tokens.reserve(user, 1, hold_id="open-2")
    with recorded_statements(engine) as seen:
        usage = tokens.usage(user)
    assert usage.token_held == 2
    assert len([s for s, _ in plain if s != "BEGIN"]) == 1  # nothing held: one row
    statements = [s for s in seen if s[0] != "BEGIN"]
    assert len(statements) == 2
    holds_query = statements[1]
    assert "tokenplans_holds" in holds_query[0]
    assert "tokenplans_ledger_entries" not in holds_query[0]
    dialect = engine.dialect.name
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        if dialect == "postgresql":  # a small test table is cheaper to scan: ask if it can
            conn.exec_driver_sql("SET enable_seqscan = off")
        rows = conn.exec_driver_sql(prefix + holds_query[0], holds_query[1]).all()
    plan = "\n".join(" ".join(str(value) for value in row) for row in rows)
    if dialect == "postgresql":  # which index it picks depends on the statistics
        assert "Index" in plan, plan
        assert "Seq Scan" not in plan, plan
    else:
        assert "ix_tokenplans_holds_subject_status_created_at" in plan, plan


# -- zero-credit holds, the cap and the sweep --------------------------------------------

#: A model priced at nothing, and one whose smallest call rounds up to one credit.
PRICES = PriceBook.from_mapping(
    {
        "version": "t",
        "models": {"free-model": {"input": 0, "output": 0}, "cheap": {"input": 1, "output": 1}},
    }
)


def test_a_debit_or_a_hold_of_zero_credits_is_refused_and_stores_nothing(
    store: AccountStore,
) -> None:
    tokens = service_over(store, SettableClock(MID_JANUARY), pricer=PRICES)
    user = Principal(new_subject())
    for attempt in (
        lambda: tokens.reserve(user, estimate=Estimate("free-model", 500, 500)),
        lambda: tokens.reserve(user, estimate=Estimate("cheap", 0, 0)),
        lambda: tokens.consume(user, usage=ModelUsage("free-model", 500, 500)),
        lambda: tokens.reserve(user, 0),
        lambda: tokens.consume(user, 0),
    ):
        with pytest.raises(InvalidRequestError):
            attempt()
    assert store.load(user.subject) is None
    assert list(store.outstanding(user.subject).holds) == []


def test_the_sweep_moves_on_from_an_account_it_cannot_tidy(store: AccountStore) -> None:
    """An open hold of 0 as earlier versions stored one (the account holds nothing, so the
    roll-forward never reads it) stays due for every sweep: a batch after it still ends,
    and the accounts after it are swept."""
    clock = SettableClock(MID_JANUARY)
    tokens = service_over(store, clock)
    stuck = new_subject("stuck")
    _opened(store, stuck)
    _bump(store, stuck, HoldWrite(_hold(stuck, "old", amount=0), None))
    due = [Principal(new_subject("due")) for _ in range(3)]
    for user in due:
        tokens.reserve(user, 10, ttl_seconds=1)
    clock.advance(seconds=10)
    everyone = list(store.subjects_with_expired_holds(clock.now(), limit=10**6))
    assert {stuck, *(user.subject for user in due)} <= set(everyone)
    # A keyset cursor: in the store's own order, only the subjects after the one given.
    assert (
        store.subjects_with_expired_holds(clock.now(), limit=10**6, after=everyone[0])
        == (everyone[1:])
    )
    assert (
        store.subjects_with_expired_holds(clock.now(), limit=2, after=everyone[0])
        == (everyone[1:3])
    )

    swept: list[str] = []
    after = None
    while batch := tokens.sweep_expired_holds(ADMIN, limit=1, after=after):
        swept.extend(batch)
        after = batch[-1]
        assert len(swept) <= len(everyone), "the sweep found a subject twice"
    assert swept == everyone
    for user in due:
        assert store.load(user.subject).token_held == 0  # type: ignore[union-attr]
    assert stuck in store.subjects_with_expired_holds(clock.now(), limit=10**6)


def test_thousands_of_zero_and_one_credit_reserves_on_sqlite_meet_the_refusal_and_the_cap(
    tmp_path: Path,
) -> None:
    """The load of the review: thousands of free holds were all accepted and escaped the
    cap. Now a free one is refused before the database is read, one-credit holds stop at
    the cap, and what one request reads is bounded by it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'load.sqlite3'}")
    upgrade_schema(engine)
    try:
        store = SqlAccountStore(engine, clock_source="process")
        clock = SettableClock(MID_JANUARY)
        catalog = PlanCatalog.from_mapping({"big": {"price": 0, "tokens": 10**9}})
        tokens = service_over(store, clock, catalog, pricer=PRICES)
        user = Principal(new_subject())
        free, cheap = Estimate("free-model", 1000, 1000), Estimate("cheap", 1, 1)

        with recorded_statements(engine) as seen:
            for _ in range(2500):
                with pytest.raises(InvalidRequestError, match="costs 0 credits"):
                    tokens.reserve(user, estimate=free, ttl_seconds=86_400)
        assert seen == []

        placed = refused = 0
        for n in range(MAX_OPEN_HOLDS + 50):
            try:
                tokens.reserve(user, estimate=cheap, hold_id=f"h{n}", ttl_seconds=86_400)
            except TooManyHoldsError:
                refused += 1
            else:
                placed += 1
        assert (placed, refused) == (MAX_OPEN_HOLDS, 50)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT COUNT(*), MIN(amount) FROM tokenplans_holds WHERE subject = :s"),
                {"s": user.subject},
            ).one()
        assert tuple(rows) == (MAX_OPEN_HOLDS, 1)
        assert tokens.usage(user).token_held == MAX_OPEN_HOLDS

        # A refused reserve reads the snapshot and the open holds, and writes nothing.
        with recorded_statements(engine) as seen, pytest.raises(TooManyHoldsError):
            tokens.reserve(user, estimate=cheap, ttl_seconds=86_400)
        verbs = [statement.split()[0] for statement, _ in seen]
        assert verbs.count("SELECT") == 2
        assert not {"INSERT", "UPDATE", "DELETE"} & set(verbs)

        # A day later all of them expire in one write, and the sweep after it ends.
        clock.advance(hours=25)
        assert tokens.sweep_expired_holds(ADMIN, limit=1) == [user.subject]
        assert tokens.usage(user).token_held == 0
        assert tokens.sweep_expired_holds(ADMIN, limit=1, after=user.subject) == []
        assert list(store.subjects_with_expired_holds(clock.now(), limit=10)) == []
    finally:
        engine.dispose()
