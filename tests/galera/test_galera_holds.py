"""Holds on a 3-node Galera cluster: placed on one node, closed on another, at most once.

A hold is a row written in the same transaction as its account's snapshot, so two nodes
closing one hold at the same moment collide on both rows: certification lets one commit
through, the other fails with deadlock error 1213 and is decided again on a fresh read,
where it finds the hold closed and answers with the first result (or a conflict naming
the hold's final state). Every node must hold the same holds and a ledger that folds to
the same snapshot, and a node lost between a reserve and its settle must not let the
settle apply twice, or not at all.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from galera.cluster import GaleraCluster
from sqlalchemy import Engine, event
from storage_support import (
    ADMIN,
    MID_JANUARY,
    HoldOutcome,
    hold_until_refused,
    new_subject,
    service_over,
    whole_ledger,
)

from tokenplans import (
    EntryKind,
    Hold,
    HoldConflictError,
    HoldStatus,
    LedgerEntry,
    Principal,
    StorageUnavailableError,
    TokenService,
    fold,
)
from tokenplans.testing import SettableClock
from tokenplans_adapters.sql import SqlAccountStore, make_engine

pytestmark = [pytest.mark.galera, pytest.mark.slow]

THREADS = 4
RACES = 12
#: The status a hold closes with, by the kind of its closing entry.
CLOSED_BY = {
    EntryKind.HOLD_SETTLED: HoldStatus.SETTLED,
    EntryKind.HOLD_RELEASED: HoldStatus.RELEASED,
}


def _services(engines: Sequence[Engine], clock: SettableClock | None = None) -> list[TokenService]:
    shared = SettableClock(MID_JANUARY) if clock is None else clock
    return [
        service_over(SqlAccountStore(engine, clock_source="process"), shared) for engine in engines
    ]


def _hold_kinds(entries: Sequence[LedgerEntry]) -> dict[str, list[EntryKind]]:
    kinds: dict[str, list[EntryKind]] = {}
    for entry in entries:
        if getattr(entry.facts, "hold_id", None) is not None:
            kinds.setdefault(getattr(entry.facts, "hold_id", None), []).append(entry.kind)
    return kinds


def _every_node_agrees(engines: Sequence[Engine], subject: str) -> list[LedgerEntry]:
    """The same snapshot and ledger on every node, folding to that snapshot; the ledger."""
    stores = [SqlAccountStore(engine, clock_source="process") for engine in engines]
    snapshot = stores[0].load(subject)
    assert snapshot is not None
    entries = whole_ledger(stores[0], subject)
    assert fold(entries) == snapshot
    for store in stores[1:]:
        assert store.load(subject) == snapshot
        assert whole_ledger(store, subject) == entries
    return entries


def _at_once(*calls: Callable[[], Hold]) -> list[Hold | HoldConflictError]:
    """Run ``calls`` in threads released together; each one's hold or hold conflict."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Hold]) -> Hold | HoldConflictError:
        barrier.wait()
        try:
            return call()
        except HoldConflictError as conflict:
            return conflict

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_a_hold_placed_on_one_node_is_settled_on_another_once_and_replayed_on_the_third(
    node_engines: list[Engine],
) -> None:
    """The settle on node2 must see node3's open hold: its overage is what exceeds the
    remaining balance read just before it, and other holds are never eaten into."""
    node1, node2, node3 = _services(node_engines)
    user = Principal(new_subject("galera-hold"))

    node1.reserve(user, 300, hold_id="call-1")
    node3.reserve(user, 600, hold_id="call-2")  # remaining: 1,000 - 900 = 100
    settled = node2.settle(user, "call-1", 500)
    assert (settled.status, settled.settled, settled.overage) == (HoldStatus.SETTLED, 500, 100)
    assert not settled.replayed
    again = node3.settle(user, "call-1", 500)
    assert again.replayed
    assert again == settled
    with pytest.raises(HoldConflictError):
        node1.release(user, "call-1")
    node1.release(user, "call-2")

    usage = node3.usage(user)
    assert (usage.token_used, usage.token_held, usage.remaining) == (500, 0, 500)
    entries = _every_node_agrees(node_engines, user.subject)
    assert _hold_kinds(entries) == {
        "call-1": [EntryKind.HOLD_PLACED, EntryKind.HOLD_SETTLED],
        "call-2": [EntryKind.HOLD_PLACED, EntryKind.HOLD_RELEASED],
    }
    for engine in node_engines:
        assert (
            SqlAccountStore(engine, clock_source="process").find_hold(user.subject, "call-1")
            == settled
        )


def test_the_same_settle_from_two_nodes_at_once_applies_once_and_both_see_one_result(
    node_engines: list[Engine],
) -> None:
    services = _services(node_engines)
    user = Principal(new_subject("galera-raced"))
    for n in range(RACES):
        placer, first, second = (services[(n + i) % 3] for i in range(3))
        hold_id = f"raced-{n}"
        placer.reserve(user, 40, hold_id=hold_id)
        results = _at_once(
            lambda: first.settle(user, hold_id, 30),  # noqa: B023 - run before the next n
            lambda: second.settle(user, hold_id, 30),  # noqa: B023
        )
        assert all(isinstance(r, Hold) for r in results), results
        assert results[0] == results[1]
        assert sorted(r.replayed for r in results if isinstance(r, Hold)) == [False, True]

    entries = _every_node_agrees(node_engines, user.subject)
    assert _hold_kinds(entries) == {
        f"raced-{n}": [EntryKind.HOLD_PLACED, EntryKind.HOLD_SETTLED] for n in range(RACES)
    }
    assert entries[-1].after.token_used == 30 * RACES


def test_a_settle_and_a_release_racing_from_two_nodes_close_the_hold_once(
    node_engines: list[Engine],
) -> None:
    """One of them closes the hold; the other is a conflict naming that final state."""
    services = _services(node_engines)
    user = Principal(new_subject("galera-settle-or-release"))
    final: dict[str, HoldStatus] = {}
    for n in range(RACES):
        placer, settler, releaser = (services[(n + i) % 3] for i in range(3))
        hold_id = f"either-{n}"
        placer.reserve(user, 40, hold_id=hold_id)
        settled, released = _at_once(
            lambda: settler.settle(user, hold_id, 30),  # noqa: B023 - run before the next n
            lambda: releaser.release(user, hold_id),  # noqa: B023
        )
        winner = settled if isinstance(released, HoldConflictError) else released
        loser = released if winner is settled else settled
        assert isinstance(winner, Hold), (settled, released)
        assert isinstance(loser, HoldConflictError), (settled, released)
        assert loser.hold == winner
        assert not winner.replayed
        final[hold_id] = winner.status

    entries = _every_node_agrees(node_engines, user.subject)
    assert {
        hold_id: (kinds[0], [CLOSED_BY[k] for k in kinds[1:]])
        for hold_id, kinds in _hold_kinds(entries).items()
    } == {hold_id: (EntryKind.HOLD_PLACED, [status]) for hold_id, status in final.items()}
    settles = sum(status is HoldStatus.SETTLED for status in final.values())
    assert entries[-1].after.token_used == 30 * settles


def test_sweeps_racing_on_two_nodes_expire_each_hold_once(
    node_engines: list[Engine],
) -> None:
    """``tokenplans holds sweep`` run beside every node at the same moment (a cron job
    per application server): each expired hold gets one ``hold_expired`` entry."""
    clock = SettableClock(MID_JANUARY)
    node1, node2, node3 = _services(node_engines, clock)
    users = [Principal(new_subject("galera-swept")) for _ in range(4)]
    for n, user in enumerate(users):
        for hold in range(3):
            node1.reserve(user, 10, hold_id=f"h{hold}", ttl_seconds=5 + n)
    clock.advance(seconds=10)
    barrier = threading.Barrier(2)

    def sweep(service: TokenService) -> Sequence[str]:
        barrier.wait()
        return service.sweep_expired_holds(ADMIN, limit=10**6)

    with ThreadPoolExecutor(2) as pool:
        swept = [set(found) for found in pool.map(sweep, (node2, node3))]

    subjects = {user.subject for user in users}
    assert subjects <= swept[0] | swept[1]
    for user in users:
        entries = _every_node_agrees(node_engines, user.subject)
        expired = [EntryKind.HOLD_PLACED, EntryKind.HOLD_EXPIRED]
        assert _hold_kinds(entries) == {f"h{hold}": expired for hold in range(3)}
        assert entries[-1].after.token_held == 0


def test_three_nodes_reserving_on_one_account_never_over_reserve_and_close_every_hold_once(
    node_engines: list[Engine],
) -> None:
    """A process per node, each reserving on its own node until refused and closing every
    hold through other nodes: a release through one picked at random, a settle through
    two different ones at once (same amount)."""
    quota = 1_500
    subject = new_subject("galera-held")
    service_over(SqlAccountStore(node_engines[0], clock_source="process")).grant(
        ADMIN, quota - 1000, subject=subject
    )
    urls = [engine.url.render_as_string(hide_password=False) for engine in node_engines]
    with ProcessPoolExecutor(len(urls), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(
                hold_until_refused,
                url,
                subject,
                worker,
                THREADS,
                others=[u for u in urls if u != url],
            )
            for worker, url in enumerate(urls)
        ]
        outcomes: list[HoldOutcome] = [o for f in futures for o in f.result()]

    assert {o.hold_id.split("-")[0] for o in outcomes} == {"w0", "w1", "w2"}
    entries = _every_node_agrees(node_engines, subject)
    # Of each pair of identical settles racing from two nodes, exactly one applied.
    assert all(o.applied == 1 for o in outcomes if o.settled is not None)
    assert _hold_kinds(entries) == {
        o.hold_id: [
            EntryKind.HOLD_PLACED,
            EntryKind.HOLD_RELEASED if o.settled is None else EntryKind.HOLD_SETTLED,
        ]
        for o in outcomes
    }
    # After every entry: token_held is the sum of the holds open then, and used + held
    # never exceeds what was made available, except by the overage recorded so far.
    amounts = {o.hold_id: o.amount for o in outcomes}
    open_holds: set[str] = set()
    overage = 0
    for entry in entries:
        if entry.kind is EntryKind.HOLD_PLACED:
            assert getattr(entry.facts, "hold_id", None) is not None
            open_holds.add(getattr(entry.facts, "hold_id", None))
        elif getattr(entry.facts, "hold_id", None) is not None:
            open_holds.remove(getattr(entry.facts, "hold_id", None))
        overage += getattr(entry.facts, "overage", None) or 0
        after = entry.after
        assert after.token_held == sum(amounts[h] for h in open_holds)
        assert after.token_used + after.token_held <= after.token_quota + overage
    final = entries[-1].after
    assert (final.token_held, final.token_used) == (0, sum(o.settled or 0 for o in outcomes))
    for engine in node_engines:
        store = SqlAccountStore(engine, clock_source="process")
        assert not store.outstanding(subject).holds
        stored = {o.hold_id: store.find_hold(subject, o.hold_id) for o in outcomes}
        assert {h: (s.status, s.settled) for h, s in stored.items() if s is not None} == {
            o.hold_id: (
                HoldStatus.RELEASED if o.settled is None else HoldStatus.SETTLED,
                o.settled,
            )
            for o in outcomes
        }


def test_a_node_lost_between_reserve_and_settle_leaves_every_hold_closed_once(
    galera_cluster: GaleraCluster, node_engines: list[Engine]
) -> None:
    """node3 is killed (``kill -9``) while a settle's transaction is open on it. That
    settle, retried through node1, applies once; a hold placed on node3 is settled
    through node2; a settle node3 acknowledged before it died is on the survivors; a hold
    node3's client never closed expires; and node3, back, agrees with the others."""
    lost = galera_cluster.nodes[2]
    on_lost = make_engine(lost.url)  # its own pool: the session's stays untouched
    clock = SettableClock(MID_JANUARY)
    node1, node2, node3 = _services([*node_engines[:2], on_lost], clock)
    user = Principal(new_subject("galera-lost"))
    node3.reserve(user, 100, hold_id="acknowledged")
    node3.settle(user, "acknowledged", 80)
    node3.reserve(user, 200, hold_id="in-flight")
    node3.reserve(user, 150, hold_id="orphaned")
    node3.reserve(user, 300, hold_id="stranded", ttl_seconds=60)

    def kill_during_the_hold_update(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE tokenplans_holds"):
            lost.kill()

    event.listen(on_lost, "before_cursor_execute", kill_during_the_hold_update)
    try:
        with pytest.raises(StorageUnavailableError):
            node3.settle(user, "in-flight", 250)
        event.remove(on_lost, "before_cursor_execute", kill_during_the_hold_update)
        assert not lost.running

        retried = node1.settle(user, "in-flight", 250)
        assert not retried.replayed  # the lost transaction never committed anywhere
        assert node2.settle(user, "in-flight", 250).replayed
        assert node1.settle(user, "acknowledged", 80).replayed
        assert not node2.settle(user, "orphaned", 150).replayed
        assert node1.usage(user).token_held == 300  # the stranded hold, still open

        galera_cluster.restart(lost)  # it rejoins by an incremental state transfer
        again = node3.settle(user, "in-flight", 250)  # the client on node3 retrying
        assert again.replayed
        assert again == retried

        clock.advance(seconds=61)
        usage = node3.usage(user)
        assert (usage.token_used, usage.token_held) == (480, 0)
        assert node2.hold(user, "stranded").status is HoldStatus.EXPIRED
        node2.consume(user, 20)  # writes the expiry, stamped at its instant
    finally:
        if event.contains(on_lost, "before_cursor_execute", kill_during_the_hold_update):
            event.remove(on_lost, "before_cursor_execute", kill_during_the_hold_update)
        on_lost.dispose()
        if not lost.running:
            galera_cluster.restart(lost)

    entries = _every_node_agrees(node_engines, user.subject)
    settled = [EntryKind.HOLD_PLACED, EntryKind.HOLD_SETTLED]
    assert _hold_kinds(entries) == {
        "acknowledged": settled,
        "in-flight": settled,
        "orphaned": settled,
        "stranded": [EntryKind.HOLD_PLACED, EntryKind.HOLD_EXPIRED],
    }
    expired = next(e for e in entries if e.kind is EntryKind.HOLD_EXPIRED)
    assert expired.at == MID_JANUARY + timedelta(seconds=60)
    assert (entries[-1].after.token_used, entries[-1].after.token_held) == (500, 0)
