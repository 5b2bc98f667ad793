"""Faults: a database that goes away, a connection killed mid-commit, a failure between the
snapshot and the ledger write. Each surfaces as StorageUnavailableError (or the failure
itself), leaves no trace of the failed change, and the store recovers by itself.

The servers are shared, so "stopping the database" is done with a TCP proxy in front of
it that the test takes down and brings back; killing a connection kills only our own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from storage_support import (
    ADMIN,
    MID_JANUARY,
    Debit,
    new_subject,
    reserve_then_die,
    service_over,
    whole_ledger,
)

from tokenplans import EntryKind, HoldStatus, Principal, StorageUnavailableError, fold
from tokenplans.testing import SettableClock
from tokenplans_adapters.sql import SqlAccountStore, make_engine, upgrade_schema

SERVERS = [
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
SQL = ["sqlite", *SERVERS]
EngineFor = Callable[[str], Engine]


class Outage:
    """A TCP proxy to a database server; ``stop()`` is the server going away (every
    connection cut, new ones refused), ``resume()`` its coming back on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return listener

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        # shutdown() first: it wakes the thread blocked in accept() and stops the kernel
        # accepting on its behalf; close() alone would leave the port listening.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            doomed, self._sockets = self._sockets, []
        for s in doomed:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def resume(self) -> None:
        self._listener = self._listen(self.port)


def through_outages(outage: Outage, stop: threading.Event, work: Callable[[int], None]) -> None:
    """Run ``work(thread)`` on four threads through three outages, then ``stop`` them."""
    workers = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(3):
            stop.wait(0.3)
            outage.stop()
            stop.wait(0.2)
            outage.resume()
        stop.wait(0.3)
    finally:
        stop.set()
        for worker in workers:
            worker.join()


@pytest.fixture
def outage_for(engine_for: EngineFor) -> Iterator[Callable[[str], tuple[Outage, Engine]]]:
    made: list[tuple[Outage, Engine]] = []

    def make(backend: str) -> tuple[Outage, Engine]:
        url = engine_for(backend).url
        outage = Outage(url.host or "127.0.0.1", url.port or 0)
        engine = make_engine(url.set(host="127.0.0.1", port=outage.port))
        made.append((outage, engine))
        return outage, engine

    yield make
    for outage, engine in made:
        outage.stop()
        engine.dispose()


@pytest.mark.parametrize("backend", SERVERS)
def test_a_database_that_goes_away_is_unavailable_until_it_comes_back(
    backend: str, outage_for: Callable[[str], tuple[Outage, Engine]]
) -> None:
    outage, engine = outage_for(backend)
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store)
    subject = new_subject()
    tokens.consume(Principal(subject), 10)

    outage.stop()
    with pytest.raises(StorageUnavailableError):
        store.ping()
    with pytest.raises(StorageUnavailableError):
        tokens.consume(Principal(subject), 20)

    outage.resume()
    store.ping()
    tokens.consume(Principal(subject), 30)
    after = store.load(subject)
    assert after is not None
    assert after.token_used == 40
    assert fold(whole_ledger(store, subject)) == after


@pytest.mark.slow
@pytest.mark.parametrize("backend", SERVERS)
def test_debits_through_outages_lose_nothing_once_retried_with_their_keys(
    backend: str, outage_for: Callable[[str], tuple[Outage, Engine]]
) -> None:
    """A commit cut off mid-flight may or may not have landed; its idempotency key makes
    the retry safe either way, so after retrying every failure the books balance."""
    outage, engine = outage_for(backend)
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store)
    subject = new_subject()
    tokens.grant(ADMIN, 10**9, subject=subject)
    failed: list[Debit] = []
    succeeded: list[Debit] = []
    stop = threading.Event()

    def debit_forever(thread: int) -> None:
        n = 0
        while not stop.is_set():
            debit = Debit(f"t{thread}-{n}", 1 + n % 3)
            n += 1
            try:
                tokens.consume(Principal(subject), debit.amount, idempotency_key=debit.key)
            except StorageUnavailableError:
                failed.append(debit)
                stop.wait(0.01)  # a client backs off while the database is away
            else:
                succeeded.append(debit)

    through_outages(outage, stop, debit_forever)

    assert failed, "the outages should have cut some requests off"
    for debit in failed:
        tokens.consume(Principal(subject), debit.amount, idempotency_key=debit.key)
    after = store.load(subject)
    assert after is not None
    assert after.token_used == sum(d.amount for d in succeeded + failed)
    assert fold(whole_ledger(store, subject)) == after


def test_a_sqlite_file_that_cannot_be_opened_is_unavailable_until_it_can(tmp_path: Path) -> None:
    folder = tmp_path / "not-yet"
    engine = make_engine(f"sqlite:///{folder / 'tokenplans.db'}")
    store = SqlAccountStore(engine, clock_source="process")
    try:
        with pytest.raises(StorageUnavailableError):
            store.ping()
        with pytest.raises(StorageUnavailableError):
            service_over(store).consume(Principal("someone"), 1)
        folder.mkdir()
        upgrade_schema(engine)
        assert service_over(store).consume(Principal("someone"), 1).usage.token_used == 1
    finally:
        engine.dispose()


def _backend_id(conn: Any) -> Any:
    statement = (
        "SELECT pg_backend_pid()"
        if conn.dialect.name == "postgresql"
        else ("SELECT CONNECTION_ID()")
    )
    return conn.exec_driver_sql(statement).scalar()


def _kill_backend(admin: Engine, victim: Any) -> None:
    """End the database connection ``victim`` (:func:`_backend_id`) from the server's side."""
    with admin.begin() as killer:
        if admin.dialect.name == "postgresql":
            killer.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": victim})
        else:
            killer.exec_driver_sql(f"KILL {int(victim)}")


@pytest.mark.parametrize("backend", SERVERS)
def test_a_connection_killed_mid_commit_is_unavailable_writes_nothing_and_recovers(
    backend: str, engine_for: EngineFor
) -> None:
    admin = engine_for(backend)
    engine = make_engine(admin.url, pool_size=1, max_overflow=0)
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store)
    subject = new_subject()
    tokens.consume(Principal(subject), 10)
    before = store.load(subject), whole_ledger(store, subject)

    def kill_before_ledger_insert(conn: Any, _c: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO tokenplans_ledger_entries"):
            victim = _backend_id(conn)
            _kill_backend(admin, victim)

    event.listen(engine, "before_cursor_execute", kill_before_ledger_insert)
    try:
        with pytest.raises(StorageUnavailableError):
            tokens.consume(Principal(subject), 20, idempotency_key="killed")
    finally:
        event.remove(engine, "before_cursor_execute", kill_before_ledger_insert)
    try:
        assert (store.load(subject), whole_ledger(store, subject)) == before
        assert store.find_receipt(subject, subject, "killed") is None
        tokens.consume(Principal(subject), 20, idempotency_key="killed")
        after = store.load(subject)
        assert after is not None
        assert after.token_used == 30
    finally:
        engine.dispose()


class _KilledBeforeTheWrites(SqlAccountStore):
    """A store whose connection is killed from the server's side between the row lock
    and the commit's writes (on PostgreSQL, the writes then go in one pipeline)."""

    admin: Engine

    def commit(self, commit: Any) -> None:
        victim = self._read(_backend_id)  # inside the lock: the transaction's connection
        _kill_backend(self.admin, victim)
        super().commit(commit)


@pytest.mark.parametrize("backend", SERVERS)
def test_a_connection_killed_before_the_writes_sent_together_writes_nothing(
    backend: str, engine_for: EngineFor
) -> None:
    """No listener on the engine, so on PostgreSQL the writes go as one pipeline: its
    failure is a lost connection too, and none of its statements is kept."""
    admin = engine_for(backend)
    engine = make_engine(admin.url, pool_size=1, max_overflow=0)
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store)
    subject = new_subject()
    tokens.consume(Principal(subject), 10)
    tokens.reserve(Principal(subject), 5, hold_id="open")
    before = store.load(subject), whole_ledger(store, subject), store.outstanding(subject)
    killed = _KilledBeforeTheWrites(engine, clock_source="process")
    killed.admin = admin
    try:
        with pytest.raises(StorageUnavailableError):
            service_over(killed).settle(Principal(subject), "open", 3)
        with pytest.raises(StorageUnavailableError):
            service_over(killed).consume(Principal(subject), 20, idempotency_key="killed")
        assert (store.load(subject), whole_ledger(store, subject)) == before[:2]
        assert store.outstanding(subject) == before[2]
        assert store.find_receipt(subject, subject, "killed") is None
        tokens.consume(Principal(subject), 20, idempotency_key="killed")
        tokens.settle(Principal(subject), "open", 3)
        after = store.load(subject)
        assert after is not None
        assert (after.token_used, after.token_held) == (33, 0)
    finally:
        engine.dispose()


def _kill_pooled_connection(engine: Engine, admin: Engine) -> None:
    """End the one pooled connection of ``engine`` from the server's side, as a restart or
    an idle timeout would, while the pool still holds it."""
    with engine.connect() as conn:
        victim = _backend_id(conn)
    _kill_backend(admin, victim)


@pytest.mark.parametrize("backend", SERVERS)
def test_a_pooled_connection_that_died_while_idle_is_replaced_before_a_write_uses_it(
    backend: str, engine_for: EngineFor
) -> None:
    """No ping per checkout, but one for a connection idle long enough: a write after a
    quiet spell never meets the connection the database dropped meanwhile."""
    admin = engine_for(backend)
    engine = make_engine(admin.url, pool_size=1, max_overflow=0, ping_after_idle=0.2)
    try:
        tokens = service_over(SqlAccountStore(engine, clock_source="process"))
        subject = new_subject()
        tokens.consume(Principal(subject), 10)
        _kill_pooled_connection(engine, admin)
        time.sleep(0.3)  # the connection sits idle past ping_after_idle

        receipt = tokens.consume(Principal(subject), 20)

        assert receipt.usage.token_used == 30
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", SERVERS)
def test_without_a_ping_a_dead_pooled_connection_fails_one_write_then_the_pool_recovers(
    backend: str, engine_for: EngineFor
) -> None:
    """What a connection that dies while in steady use costs (no ping then): the write
    that meets it is a 503 and changes nothing; the pool drops it, and the retry with
    the same key applies once."""
    admin = engine_for(backend)
    engine = make_engine(admin.url, pool_size=1, max_overflow=0, ping_after_idle=None)
    try:
        store = SqlAccountStore(engine, clock_source="process")
        tokens = service_over(store)
        subject = new_subject()
        tokens.consume(Principal(subject), 10)
        _kill_pooled_connection(engine, admin)

        with pytest.raises(StorageUnavailableError):
            tokens.consume(Principal(subject), 20, idempotency_key="k")
        tokens.consume(Principal(subject), 20, idempotency_key="k")
        tokens.consume(Principal(subject), 20, idempotency_key="k")

        after = store.load(subject)
        assert after is not None
        assert after.token_used == 30
    finally:
        engine.dispose()


class PowerCut(Exception):
    """The failure injected between writing the snapshot and writing its entries."""


@pytest.mark.parametrize("backend", SQL)
def test_a_failure_between_the_snapshot_and_the_ledger_write_leaves_no_trace(
    backend: str, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store)
    subject = new_subject()
    tokens.consume(Principal(subject), 10)
    before = store.load(subject), whole_ledger(store, subject)
    wrote: list[str] = []

    def cut_power(_conn: Any, _c: Any, statement: str, parameters: Any, *_: Any) -> None:
        wrote.append(statement)
        if statement.startswith("INSERT INTO tokenplans_ledger_entries") and subject in repr(
            parameters
        ):
            raise PowerCut

    event.listen(engine, "before_cursor_execute", cut_power)
    try:
        with pytest.raises(PowerCut):
            tokens.consume(Principal(subject), 20, idempotency_key="cut")
    finally:
        event.remove(engine, "before_cursor_execute", cut_power)
    # The snapshot was written first...
    assert any(statement.startswith("UPDATE tokenplans_accounts") for statement in wrote)
    # ...and undone with everything else.
    assert (store.load(subject), whole_ledger(store, subject)) == before
    assert store.find_receipt(subject, subject, "cut") is None


def test_an_exhausted_connection_pool_is_unavailable_not_a_hang(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pool.db'}"
    upgrade_schema(url)
    engine = make_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    store = SqlAccountStore(engine, clock_source="process")
    try:
        with engine.connect(), pytest.raises(StorageUnavailableError):
            store.load("someone")
        assert store.load("someone") is None
    finally:
        engine.dispose()


# -- holds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", SQL)
def test_a_process_killed_between_reserve_and_settle_leaves_a_hold_that_expires(
    backend: str, engine_for: EngineFor
) -> None:
    """Nothing to clean up: the dead process's hold stays open until its expiry, then
    frees its tokens by itself (lazily for a read, written by the next change or a sweep)."""
    engine = engine_for(backend)
    subject = new_subject("crashed")
    url = engine.url.render_as_string(hide_password=False)
    child = multiprocessing.get_context("spawn").Process(
        target=reserve_then_die, args=(url, subject, "in-flight", 400, 60)
    )
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL

    store = SqlAccountStore(engine, clock_source="process")
    clock = SettableClock(MID_JANUARY)
    tokens = service_over(store, clock)
    user = Principal(subject)
    assert (tokens.usage(user).token_held, tokens.usage(user).remaining) == (400, 600)
    clock.advance(seconds=60)
    assert (tokens.usage(user).token_held, tokens.usage(user).remaining) == (0, 1000)
    assert tokens.sweep_expired_holds(ADMIN, limit=10**6).count(subject) == 1
    expired = store.find_hold(subject, "in-flight")
    assert expired is not None
    assert expired.status is HoldStatus.EXPIRED
    assert fold(whole_ledger(store, subject)) == store.load(subject)
    # The call did happen after all: its late settle is still charged, once.
    assert tokens.settle(user, "in-flight", 350).late
    assert tokens.settle(user, "in-flight", 350).replayed
    assert tokens.usage(user).token_used == 350


@pytest.mark.parametrize("backend", SERVERS)
def test_a_settle_cut_off_mid_commit_applies_once_when_retried(
    backend: str, engine_for: EngineFor
) -> None:
    """The connection dies while the settle commits: the caller cannot know whether it
    landed, so it retries; the hold's identity makes the retry apply at most once."""
    admin = engine_for(backend)
    engine = make_engine(admin.url, pool_size=1, max_overflow=0)
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store)
    user = Principal(new_subject())
    tokens.reserve(user, 300, hold_id="call-1")

    def kill_during_hold_update(conn: Any, _c: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE tokenplans_holds"):
            victim = _backend_id(conn)
            _kill_backend(admin, victim)

    event.listen(engine, "before_cursor_execute", kill_during_hold_update)
    try:
        with pytest.raises(StorageUnavailableError):
            tokens.settle(user, "call-1", 250)
    finally:
        event.remove(engine, "before_cursor_execute", kill_during_hold_update)
    try:
        assert store.find_hold(user.subject, "call-1").is_open  # type: ignore[union-attr]
        first = tokens.settle(user, "call-1", 250)
        again = tokens.settle(user, "call-1", 250)
        assert (first.replayed, again.replayed) == (False, True)
        usage = tokens.usage(user)
        assert (usage.token_used, usage.token_held) == (250, 0)
        assert fold(whole_ledger(store, user.subject)) == store.load(user.subject)
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("backend", SERVERS)
def test_settles_through_outages_each_apply_once_when_retried(
    backend: str, outage_for: Callable[[str], tuple[Outage, Engine]]
) -> None:
    """Reserve and settle through repeated outages, retrying every failed call with the
    same hold id until it answers: every hold ends settled once, at its amount."""
    outage, engine = outage_for(backend)
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store)
    user = Principal(new_subject())
    tokens.grant(ADMIN, 10**9, subject=user.subject)
    stop = threading.Event()
    settled: dict[str, int] = {}

    def until_answered(call: Callable[[], object]) -> None:
        while True:
            try:
                call()
            except StorageUnavailableError:
                time.sleep(0.01)
            else:
                return

    def hold_forever(thread: int) -> None:
        n = 0
        while not stop.is_set():
            hold_id, amount = f"t{thread}-{n}", 1 + n % 5
            n += 1
            until_answered(lambda: tokens.reserve(user, amount, hold_id=hold_id))  # noqa: B023
            until_answered(lambda: tokens.settle(user, hold_id, amount + 1))  # noqa: B023
            settled[hold_id] = amount + 1

    through_outages(outage, stop, hold_forever)

    after = store.load(user.subject)
    assert after is not None
    entries = whole_ledger(store, user.subject)
    assert fold(entries) == after
    settles = [e for e in entries if e.kind is EntryKind.HOLD_SETTLED]
    assert sorted((getattr(e.facts, "hold_id", None), e.amount) for e in settles) == sorted(
        settled.items()
    )
    assert (after.token_used, after.token_held) == (sum(settled.values()), 0)
