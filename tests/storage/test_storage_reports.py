"""The daily usage rollup and what reads it, on every store: reports equal the sums over
the ledger for random histories, concurrent debits leave it exact, the top spenders and
the accounts list page by their keyset cursors, and the migration's backfill sums the
stored ledgers as the commits did.

Databases are shared with concurrent runs: each test works on fresh subjects, and the
tests that read every subject do so on days far in the future no other test touches.
"""

from __future__ import annotations

import importlib.util
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from doc_blocks import DOCS, first_fenced
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from storage_support import ADMIN, new_subject, service_over, whole_ledger

import tokenplans_adapters.sql as sql_package
from tokenplans import (
    AccountStore,
    EntryKind,
    InsufficientTokensError,
    LedgerEntry,
    ModelUsage,
    PlanCatalog,
    Principal,
    TokenService,
    UsageRow,
)
from tokenplans.testing import SettableClock
from tokenplans_adapters.sql import SqlAccountStore, make_engine, upgrade_schema
from tokenplans_adapters.sql.schema import usage_daily

MODELS = ("model-a", "Model-A", "model-b")
COUNT_NAMES = (
    "credits",
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def ledger_sums(entries: list[LedgerEntry]) -> dict[tuple[date, str], list[int]]:
    """What the ledger says was spent, by (UTC day, model or ""), summed here from the
    entries themselves (not through the rollup's own code)."""
    sums: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0] * len(COUNT_NAMES))
    for entry in entries:
        if entry.kind not in (EntryKind.DEBITED, EntryKind.HOLD_SETTLED):
            continue
        usage = None if entry.priced is None else entry.priced.usage
        key = (entry.at.astimezone(UTC).date(), "" if usage is None else usage.model)
        row = sums[key]
        row[0] += entry.amount or 0
        row[1] += 1
        if usage is not None:
            for i, kind in enumerate(("input", "output", "cache_read", "cache_write", "reasoning")):
                row[2 + i] += getattr(usage, f"{kind}_tokens")
    return dict(sums)


def as_sums(rows: tuple[UsageRow, ...] | list[UsageRow]) -> dict[tuple[object, object], list[int]]:
    return {(row.day, row.model): list(row.counts().values()) for row in rows}


def rolled_up(sums: dict[tuple[date, str], list[int]], by: Callable[[date, str], object]) -> dict:
    out: dict[object, list[int]] = defaultdict(lambda: [0] * len(COUNT_NAMES))
    for (day, model), row in sums.items():
        out[by(day, model)] = [a + b for a, b in zip(out[by(day, model)], row, strict=True)]
    return dict(out)


# -- a random history ---------------------------------------------------------------

counts = st.one_of(st.integers(0, 300), st.integers(0, 10**9))
usages = st.builds(
    ModelUsage, st.sampled_from(MODELS), counts, counts, counts, counts, counts
).filter(lambda u: 1 <= u.total_tokens <= 10**12)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("debit"), st.integers(1, 50)),
        st.tuples(st.just("priced"), usages),
        st.tuples(st.just("hold"), st.integers(1, 50), st.one_of(st.none(), usages)),
        st.tuples(st.just("advance"), st.integers(0, 80)),
    ),
    max_size=25,
)


def play(service: TokenService, clock: SettableClock, subject: str, run: list) -> None:
    user = Principal(subject)
    service.grant(ADMIN, 10**12, subject=subject)
    for step, operation in enumerate(run):
        try:
            match operation:
                case ("debit", amount):
                    service.consume(user, amount)
                case ("priced", usage):
                    service.consume(user, usage=usage)
                case ("hold", amount, settle_with):
                    service.reserve(user, amount, hold_id=f"h{step}")
                    if settle_with is None:
                        service.settle(user, f"h{step}", amount // 2)
                    else:
                        service.settle(user, f"h{step}", usage=settle_with)
                case ("advance", hours):
                    clock.advance(hours=hours)
                    service.grant(ADMIN, 10**12, subject=subject)  # grants lapse monthly
        except InsufficientTokensError:
            continue


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(run=operations, start_hour=st.integers(0, 23))
def test_a_report_is_the_sum_of_the_ledger_by_day_and_model(
    store: AccountStore, run: list, start_hour: int
) -> None:
    clock = SettableClock(datetime(2026, 3, 30, start_hour, 59, 59, 999_999, tzinfo=UTC))
    service = service_over(store, clock)
    subject = new_subject("reported")
    first_day = clock.now().date()
    play(service, clock, subject, run)
    expected = ledger_sums(whole_ledger(store, subject))
    user = Principal(subject)
    last_day = clock.now().date()

    def report(*group_by: str) -> dict:
        result = service.usage_report(user, start=first_day, end=last_day, group_by=group_by)
        assert result.subject == subject
        assert list(result.totals.counts().values()) == [
            sum(row[i] for row in expected.values()) for i in range(len(COUNT_NAMES))
        ]
        return as_sums(result.rows)

    assert report("day", "model") == expected
    assert report("day") == rolled_up(expected, lambda day, _model: (day, None))
    assert report("model") == rolled_up(expected, lambda _day, model: (None, model))
    assert report() == rolled_up(expected, lambda _day, _model: (None, None))
    # A window of one day in the middle holds that day's rows only.
    middle = first_day + (last_day - first_day) // 2
    one_day = service.usage_report(user, start=middle, end=middle, group_by=("day", "model"))
    assert as_sums(one_day.rows) == {key: v for key, v in expected.items() if key[0] == middle}


def test_a_debit_at_the_last_microsecond_of_a_day_counts_on_that_day(store: AccountStore) -> None:
    clock = SettableClock(datetime(2026, 5, 31, 23, 59, 59, 999_999, tzinfo=UTC))
    service = service_over(store, clock)
    user = Principal(new_subject())
    service.consume(user, 7)
    clock.advance(microseconds=1)
    service.consume(user, usage=ModelUsage("model-a", 3, 4))
    report = service.usage_report(
        user, start=date(2026, 5, 31), end=date(2026, 6, 1), group_by=("day", "model")
    )
    assert [(r.day, r.model, r.credits, r.calls) for r in report.rows] == [
        (date(2026, 5, 31), "", 7, 1),
        (date(2026, 6, 1), "model-a", 7, 1),
    ]
    assert (report.rows[1].input_tokens, report.rows[1].output_tokens) == (3, 4)
    assert (report.totals.credits, report.totals.calls) == (14, 2)


def test_reserving_and_releasing_or_expiring_a_hold_spends_nothing(store: AccountStore) -> None:
    clock = SettableClock(datetime(2026, 5, 10, 12, tzinfo=UTC))
    service = service_over(store, clock)
    user = Principal(new_subject())
    service.reserve(user, 100, hold_id="released")
    service.release(user, "released")
    service.reserve(user, 100, hold_id="expired", ttl_seconds=1)
    clock.advance(seconds=5)
    service.consume(user, 1)  # writes the expiry
    report = service.usage_report(user, start=date(2026, 5, 10), end=date(2026, 5, 10))
    assert [(r.credits, r.calls) for r in report.rows] == [(1, 1)]


def test_a_repeated_idempotent_debit_or_settle_adds_nothing_to_the_rollup(
    store: AccountStore,
) -> None:
    service = service_over(store, SettableClock(datetime(2026, 5, 10, 12, tzinfo=UTC)))
    user = Principal(new_subject())
    for _ in range(3):
        service.consume(user, usage=ModelUsage("model-a", 10, 5), idempotency_key="once")
    service.reserve(user, 50, hold_id="h")
    for _ in range(3):
        service.settle(user, "h", 20)
    report = service.usage_report(user, start=date(2026, 5, 10), end=date(2026, 5, 10))
    assert (report.totals.credits, report.totals.calls) == (35, 2)


# -- concurrency ------------------------------------------------------------------------


def test_debits_from_eight_threads_on_one_account_leave_the_rollup_exact(
    store: AccountStore,
) -> None:
    clock = SettableClock(datetime(2026, 7, 1, 12, tzinfo=UTC))
    service = service_over(store, clock)
    subject = new_subject("contended")
    user = Principal(subject)
    service.grant(ADMIN, 10**6, subject=subject)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            start.wait()
            for n in range(15):
                if (index + n) % 3 == 0:
                    service.consume(user, 1 + n % 5)
                else:
                    service.consume(user, usage=ModelUsage(MODELS[index % 2], n, index))
        except BaseException as error:  # raised in the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    expected = ledger_sums(whole_ledger(store, subject))
    day = clock.now().date()
    report = service.usage_report(user, start=day, end=day, group_by=("day", "model"))
    assert as_sums(report.rows) == expected
    assert report.totals.calls == 8 * 15


# -- every subject: the all-subjects report and the top spenders ------------------------


def far_future_day() -> datetime:
    """A day no other test (or concurrent run) spends on: the all-subject reads see only
    this test's spending."""
    days = random.randrange(2_500_000)  # noqa: S311 - not a secret
    return datetime(2200, 1, 1, 12, tzinfo=UTC) + timedelta(days=days)


def test_top_spenders_page_by_credits_then_subject_and_the_all_subjects_report_sums_them(
    store: AccountStore,
) -> None:
    clock = SettableClock(far_future_day())
    service = service_over(store, clock)
    day = clock.now().date()
    run = uuid.uuid4().hex
    spent = {f"{run}-{i:02d}": credits for i, credits in enumerate([5, 9, 5, 1, 9, 5, 30])}
    for subject, credits in spent.items():
        service.consume(Principal(subject), credits)
    service.consume(Principal(f"{run}-00"), usage=ModelUsage("model-a", 2, 2))
    spent[f"{run}-00"] += 4
    expected = sorted(spent.items(), key=lambda item: (-item[1], item[0]))

    seen: list[tuple[str, int]] = []
    cursor = None
    while True:
        page = service.top_spenders(ADMIN, start=day, end=day, cursor=cursor, limit=3)
        assert len(page.rows) <= 3
        seen += [(row.subject, row.totals.credits) for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected
    assert service.top_spenders(ADMIN, start=day, end=day, limit=200).next_cursor is None

    everyone = service.usage_report_all(ADMIN, start=day, end=day, group_by=("model",))
    assert everyone.subject is None
    assert [(r.model, r.credits, r.calls) for r in everyone.rows] == [
        ("", sum(spent.values()) - 4, 7),
        ("model-a", 4, 1),
    ]
    # Nothing was spent the day before.
    before = day - timedelta(days=1)
    assert service.usage_report_all(ADMIN, start=before, end=before).rows == ()
    assert service.top_spenders(ADMIN, start=before, end=before).rows == ()


# -- the accounts list ------------------------------------------------------------------


def test_the_accounts_list_pages_in_subject_order_and_filters_by_plan(
    store: AccountStore,
) -> None:
    catalog = PlanCatalog.default()
    clock = SettableClock(datetime(2026, 3, 10, tzinfo=UTC))
    service = service_over(store, clock, catalog)
    prefix = f"listed-{uuid.uuid4().hex}-"
    paid = next(plan for plan in catalog if plan.duration_days is not None)
    on_paid = set()
    for i in range(7):
        subject = f"{prefix}{i:02d}"
        service.consume(Principal(subject), 1 + i)
        if i % 3 == 0:
            service.set_plan(ADMIN, paid.id, subject=subject)
            on_paid.add(subject)

    def mine(plan: str | None) -> list[tuple[str, str]]:
        """Every page after ``prefix``, until a subject not of this test shows up."""
        seen: list[tuple[str, str]] = []
        cursor: str | None = prefix
        while cursor is not None:
            page = service.list_accounts(ADMIN, plan=plan, cursor=cursor, limit=2)
            assert len(page.accounts) <= 2
            for usage in page.accounts:
                if not usage.subject.startswith(prefix):
                    return seen
                seen.append((usage.subject, usage.plan))
            cursor = page.next_cursor
        return seen

    listed = mine(None)
    assert [subject for subject, _ in listed] == [f"{prefix}{i:02d}" for i in range(7)]
    assert {subject for subject, plan in listed if plan == paid.id} == on_paid
    assert [s for s, _ in mine(paid.id)] == sorted(on_paid)
    default = catalog.default_plan.id
    assert [s for s, _ in mine(default)] == sorted(set(dict(listed)) - on_paid)
    # Once the paid terms end, those accounts read as on the default plan, in its list.
    clock.set(datetime(2027, 6, 1, tzinfo=UTC))
    assert [s for s, _ in mine(paid.id)] == []
    assert [s for s, _ in mine(default)] == [s for s, _ in listed]


# -- the migration's backfill ------------------------------------------------------------


def _migration() -> ModuleType:
    path = Path(sql_package.__file__).parent / "migrations" / "versions" / "r0004_usage_rollup.py"
    spec = importlib.util.spec_from_file_location("r0004_usage_rollup", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_backfills_sums_of_the_ledger_are_the_rows_the_commits_wrote(
    sql_store: SqlAccountStore,
) -> None:
    clock = SettableClock(datetime(2026, 8, 31, 23, 59, 59, 999_999, tzinfo=UTC))
    service = service_over(sql_store, clock)
    subject = new_subject("backfilled")
    user = Principal(subject)
    service.consume(user, 3)
    service.consume(user, usage=ModelUsage("Model-A", 1, 2, 3, 4, 5))
    service.consume(user, usage=ModelUsage("model-a", 1, 1))  # another model, byte for byte
    clock.advance(microseconds=1)
    service.consume(user, usage=ModelUsage("model-a", 10, 20))
    service.reserve(user, 40, hold_id="h")
    service.settle(user, "h", usage=ModelUsage("model-a", 5, 5))
    select_sql = _migration().spending_by_day(sql_store.engine.dialect.name)
    columns = ", ".join(COUNT_NAMES)
    with sql_store.engine.connect() as conn:
        stored = conn.execute(
            select(usage_daily).where(usage_daily.c.subject == subject)
        ).mappings()
        written = {(row["day"], row["model"]): [row[n] for n in COUNT_NAMES] for row in stored}
        summed = conn.execute(
            text(f"SELECT day, model, {columns} FROM ({select_sql}) s WHERE subject = :s"),  # noqa: S608
            {"s": subject if conn.dialect.name not in ("mysql", "mariadb") else subject.encode()},
        ).all()
    backfilled = {(_as_date(row[0]), _as_text(row[1])): [int(v) for v in row[2:]] for row in summed}
    assert written == backfilled == ledger_sums(whole_ledger(sql_store, subject))
    assert len(written) == 4  # "", Model-A and model-a on the first day, model-a on the second


def _as_date(value: object) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value  # type: ignore[return-value]


def _as_text(value: object) -> str:
    return bytes(value).decode() if isinstance(value, bytes | bytearray) else str(value)


def test_upgrading_a_database_with_ledgers_to_the_rollup_backfills_it(tmp_path: Path) -> None:
    from alembic import command  # noqa: PLC0415

    from tokenplans_adapters.sql.migrate import alembic_config  # noqa: PLC0415

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    clock = SettableClock(datetime(2026, 2, 27, 22, tzinfo=UTC))
    service = service_over(SqlAccountStore(engine, clock_source="process"), clock)
    subjects = [new_subject() for _ in range(3)]
    for hour in range(0, 60, 7):
        for i, subject in enumerate(subjects):
            service.consume(Principal(subject), usage=ModelUsage(MODELS[i], hour + 1, i))
            service.consume(Principal(subject), 1 + i)
        clock.advance(hours=7)
    day = date(2026, 2, 27)
    before = {
        s: service.usage_report(
            Principal(s), start=day, end=day + timedelta(days=3), group_by=("day", "model")
        )
        for s in subjects
    }
    config = alembic_config()
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")  # the rollup is gone, the ledgers stay
        conn.commit()
    upgrade_schema(engine)  # created again, and filled from the ledgers
    for subject in subjects:
        again = service.usage_report(
            Principal(subject), start=day, end=day + timedelta(days=3), group_by=("day", "model")
        )
        assert again == before[subject]
        assert as_sums(again.rows) == ledger_sums(whole_ledger(service.store, subject))
    engine.dispose()


def test_a_fresh_sqlite_database_reports_nothing_before_any_spending(tmp_path: Path) -> None:
    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade_schema(engine)
    service = service_over(SqlAccountStore(engine, clock_source="process"))
    report = service.usage_report(
        Principal("nobody"), start=date(2026, 1, 1), end=date(2026, 1, 31)
    )
    assert report.rows == ()
    assert report.totals == UsageRow(None, None, 0, 0, 0, 0)
    engine.dispose()


# -- the documentation's examples ---------------------------------------------------------


def test_the_documented_sql_query_reads_the_rollup_on_every_database(
    sql_store: SqlAccountStore,
) -> None:
    service = service_over(sql_store, SettableClock(datetime(2026, 12, 5, 9, tzinfo=UTC)))
    model = f"doc-{uuid.uuid4().hex}"
    service.consume(Principal(new_subject()), usage=ModelUsage(model, 30, 12))
    query = first_fenced(DOCS / "reports.md", "sql")
    with sql_store.engine.connect() as conn:
        rows = {_as_text(row[0]): (int(row[1]), int(row[2])) for row in conn.execute(text(query))}
    assert rows[model] == (42, 1)


def test_the_documented_python_example_runs(
    store: AccountStore, capsys: pytest.CaptureFixture[str]
) -> None:
    service = service_over(store, SettableClock(datetime(2026, 12, 1, 9, tzinfo=UTC)))
    principal = Principal(new_subject())
    service.consume(principal, usage=ModelUsage("gpt-4o", 100, 20, cache_read_tokens=5))
    exec(first_fenced(DOCS / "reports.md", "python"), {"service": service, "principal": principal})  # noqa: S102
    assert capsys.readouterr().out.splitlines() == ["2026-12-01 gpt-4o 125 1 100", "125"]
