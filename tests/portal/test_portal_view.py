"""The page's numbers and drawings, computed from report rows and usages (no HTML)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import attrs
from hypothesis import given
from hypothesis import strategies as st

from tokenplans import Usage
from tokenplans_adapters.portal import view

END = date(2026, 3, 14)


@attrs.frozen
class Row:
    day: date | None
    model: str | None
    credits: int
    calls: int = 1
    input_tokens: int = 0
    output_tokens: int = 0


rows = st.lists(
    st.builds(
        Row,
        day=st.dates(END - timedelta(days=40), END),
        model=st.sampled_from([None, "a", "b", "c", "d", "e", "f", "g", "h"]),
        credits=st.integers(0, 10**9),
    ),
    max_size=60,
)


@given(rows, st.sampled_from([view.WIDE, view.NARROW]))
def test_the_chart_stacks_each_days_credits_inside_its_box(
    report: list[Row], size: tuple[int, int]
) -> None:
    chart = view.chart(report, END, size=size)

    start = END - timedelta(days=29)
    shown = [row for row in report if row.day is not None and start <= row.day <= END]
    assert chart.total == sum(row.credits for row in shown)
    assert (chart.width, chart.height) == size
    top = int(chart.y_ticks[-1].label.replace(",", ""))
    assert top >= max([0, *(_per_day(shown).values())])
    plot = chart.plot_bottom - chart.plot_top
    columns: dict[float, float] = {}
    for bar in chart.bars:
        assert chart.plot_top - 0.05 <= bar.y
        assert bar.y + bar.height <= chart.plot_bottom + 0.05
        assert chart.plot_left <= bar.x
        assert bar.x + bar.width <= chart.plot_right + 0.05
        columns[bar.x] = columns.get(bar.x, 0) + bar.height
    heights = sorted(columns.values())
    expected = sorted(plot * credits / top for credits in _per_day(shown).values() if credits)
    assert len(heights) == len(expected)
    for drawn, wanted in zip(heights, expected, strict=True):
        assert abs(drawn - wanted) <= 0.01 * len(chart.series) + 0.01
    assert len(chart.series) <= view.NAMED_MODELS + 1
    assert sum(series.credits for series in chart.series) == sum(row.credits for row in report)


def _per_day(report: list[Row]) -> dict[date, int]:
    days: dict[date, int] = {}
    for row in report:
        assert row.day is not None
        days[row.day] = days.get(row.day, 0) + row.credits
    return days


@given(rows)
def test_top_models_add_up_and_come_most_first(report: list[Row]) -> None:
    lines = view.top_models(report, limit=100)

    assert sum(line.credits for line in lines) == sum(row.credits for row in report)
    assert sum(line.calls for line in lines) == len(report)
    assert [line.credits for line in lines] == sorted(
        (line.credits for line in lines), reverse=True
    )


def _usage(quota: int, used: int, held: int) -> Usage:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return Usage(
        "alice",
        "free",
        quota,
        used,
        max(0, quota - used - held),
        None,
        start,
        datetime(2026, 4, 1, tzinfo=UTC),
        held,
    )


@given(st.integers(0, 10**12), st.integers(0, 10**12), st.integers(0, 10**12))
def test_the_usage_bar_splits_its_length_by_used_held_and_remaining(
    quota: int, used: int, held: int
) -> None:
    bar = view.usage_bar(_usage(quota, used, held))

    parts = {segment.kind: segment for segment in bar.segments}
    assert [parts[kind].value for kind in ("used", "held", "free")] == [
        used,
        held,
        max(0, quota - used - held),
    ]
    assert sum(segment.width for segment in bar.segments) <= view.BAR_WIDTH + 0.05
    assert bar.overage == max(0, used + held - quota)
    if quota and used + held <= quota:
        assert abs(sum(segment.width for segment in bar.segments) - view.BAR_WIDTH) <= 0.05


def test_times_and_money_read_as_people_write_them() -> None:
    now = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)

    assert view.when(datetime(2026, 4, 1, tzinfo=UTC)) == "1 Apr 2026, 00:00 UTC"
    assert view.until(datetime(2026, 4, 1, tzinfo=UTC), now) == "in 17 days"
    assert view.until(now + timedelta(hours=1), now) == "in 1 hour"
    assert view.until(now, now) == "now"
    assert view.money(1900, "USD") == "USD 19.00"
    assert view.money(123456789, "INR") == "INR 1,234,567.89"
    assert view.kind_label("hold_settled") == "Reservation charged"
    assert view.kind_label("lot_expired") == "Lot expired"
