"""What the usage page shows, computed from the library's values: plain data for the
templates (no HTML here, and no I/O). The chart and the usage bar are drawn as SVG by
the templates from the geometry computed here, so the page needs no script and no
inline style. Docs: usage-page.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import attrs

from tokenplans import Usage

#: How many models the chart and table name; the rest are summed as "other models".
NAMED_MODELS = 6
#: The label of credits charged without a model call (a plain amount).
NO_MODEL = "Without a model"
OTHER_MODELS = "Other models"
CHART_DAYS = 30
#: The chart's drawing boxes (SVG user units, about a pixel each): one for wide screens,
#: one for phones, so its labels stay readable at both (the stylesheet shows one).
WIDE = (960, 260)
NARROW = (360, 220)
_PLOT_LEFT, _PLOT_TOP, _PLOT_BOTTOM = 46, 12, 26
BAR_WIDTH = 1000


class ReportRow(Protocol):
    """What the page reads of a usage report's row."""

    @property
    def day(self) -> date | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def credits(self) -> int: ...
    @property
    def calls(self) -> int: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...


@attrs.frozen
class Segment:
    """One part of the usage bar: ``x`` and ``width`` in the bar's 0-1000 box."""

    kind: str
    label: str
    value: int
    x: float
    width: float


@attrs.frozen
class UsageBar:
    quota: int
    used: int
    held: int
    remaining: int
    overage: int
    percent_used: int
    segments: Sequence[Segment]


def usage_bar(usage: Usage) -> UsageBar:
    """Used, held and remaining as parts of one bar; past the quota (a downgrade, a settle
    above its hold) the bar is as long as what was used and held, and says by how much."""
    used, held, quota = usage.token_used, usage.token_held, usage.token_quota
    remaining = usage.remaining
    whole = max(quota, used + held, 1)
    x = 0.0
    segments = []
    for kind, label, value in (
        ("used", "Used", used),
        ("held", "Held", held),
        ("free", "Remaining", remaining),
    ):
        width = round(BAR_WIDTH * value / whole, 2)
        segments.append(Segment(kind, label, value, x, width))
        x += width
    percent = 100 if quota == 0 and used + held else round(100 * (used + held) / max(quota, 1))
    return UsageBar(
        quota, used, held, remaining, max(0, used + held - quota), min(percent, 999), segments
    )


@attrs.frozen
class Bar:
    """One model's part of one day's column."""

    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@attrs.frozen
class Tick:
    position: float
    label: str


@attrs.frozen
class Series:
    index: int
    label: str
    credits: int


@attrs.frozen
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    bars: Sequence[Bar]
    y_ticks: Sequence[Tick]
    x_ticks: Sequence[Tick]
    series: Sequence[Series]
    total: int
    days: int
    start: date
    end: date
    summary: str

    @property
    def empty(self) -> bool:
        return self.total == 0


def model_label(model: str | None) -> str:
    return model or NO_MODEL


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value`` (at least 1)."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def ranked_models(rows: Iterable[ReportRow]) -> list[tuple[str, int]]:
    """Model labels by credits, most first (ties by name)."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[model_label(row.model)] = totals.get(model_label(row.model), 0) + row.credits
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def chart(
    rows: Sequence[ReportRow],
    end: date,
    days: int = CHART_DAYS,
    *,
    size: tuple[int, int] = WIDE,
) -> Chart:
    """Credits per UTC day for the ``days`` days ending with ``end``, stacked by model:
    the :data:`NAMED_MODELS` biggest by name, the others together; drawn in a box of
    ``size`` (width, height)."""
    width, height = size
    start = end - timedelta(days=days - 1)
    ranked = ranked_models(rows)
    named = [label for label, _ in ranked[:NAMED_MODELS]]
    series_of = {label: index for index, label in enumerate(named)}
    other = len(named)
    per_day: dict[date, dict[int, int]] = {}
    for row in rows:
        if row.day is None or not start <= row.day <= end:
            continue
        index = series_of.get(model_label(row.model), other)
        column = per_day.setdefault(row.day, {})
        column[index] = column.get(index, 0) + row.credits
    top = _nice_ceiling(max((sum(c.values()) for c in per_day.values()), default=0))
    right = width - 8
    bottom = height - _PLOT_BOTTOM
    plot_height = bottom - _PLOT_TOP
    slot = (right - _PLOT_LEFT) / days
    bars: list[Bar] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        y = float(bottom)
        for index, credits in sorted(per_day.get(day, {}).items()):
            if credits <= 0:
                continue
            tall = plot_height * credits / top
            y -= tall
            label = named[index] if index < other else OTHER_MODELS
            bars.append(
                Bar(
                    round(_PLOT_LEFT + offset * slot + slot * 0.15, 2),
                    round(y, 2),
                    round(slot * 0.7, 2),
                    round(tall, 2),
                    index,
                    f"{day:%d %b}: {label}, {credits:,} credits",
                )
            )
    y_ticks = [
        Tick(round(bottom - plot_height * fraction, 2), f"{round(top * fraction):,}")
        for fraction in (0, 0.5, 1)
    ]
    x_ticks = [
        Tick(round(_PLOT_LEFT + offset * slot + slot / 2, 2), f"{start + timedelta(offset):%d %b}")
        for offset in range(0, days, 7)
    ]
    totals = dict(ranked)
    series = [Series(index, label, totals[label]) for index, label in enumerate(named)]
    if len(ranked) > len(named):
        series.append(Series(other, OTHER_MODELS, sum(c for _, c in ranked[NAMED_MODELS:])))
    total = sum(credits for column in per_day.values() for credits in column.values())
    summary = f"{total:,} credits over the {days} days from {start:%d %b} to {end:%d %b %Y}" + (
        f"; most on {series[0].label} ({series[0].credits:,})" if series else ""
    )
    return Chart(
        width,
        height,
        _PLOT_LEFT,
        right,
        _PLOT_TOP,
        bottom,
        bars,
        y_ticks,
        x_ticks,
        series,
        total,
        days,
        start,
        end,
        summary,
    )


@attrs.frozen
class ModelLine:
    label: str
    credits: int
    calls: int
    input_tokens: int
    output_tokens: int
    share: int


def top_models(rows: Iterable[ReportRow], limit: int = 10) -> list[ModelLine]:
    """Each model's credits, calls and tokens, most credits first."""
    sums: dict[str, list[int]] = {}
    for row in rows:
        line = sums.setdefault(model_label(row.model), [0, 0, 0, 0])
        line[0] += row.credits
        line[1] += row.calls
        line[2] += row.input_tokens
        line[3] += row.output_tokens
    whole = sum(line[0] for line in sums.values()) or 1
    ordered = sorted(sums.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
    return [
        ModelLine(label, credits, calls, inputs, outputs, round(100 * credits / whole))
        for label, (credits, calls, inputs, outputs) in ordered
    ]


def when(moment: datetime | None) -> str:
    """A time as the page shows it: ``5 Apr 2026, 00:00 UTC``."""
    if moment is None:
        return "never"
    return f"{moment.astimezone(UTC):%-d %b %Y, %H:%M} UTC"


def short(moment: datetime) -> str:
    """A time in a table: ``14 Mar 09:30``."""
    return f"{moment.astimezone(UTC):%-d %b %H:%M}"


def until(moment: datetime, now: datetime) -> str:
    """How far ahead ``moment`` is, roughly: ``in 3 days``, ``in 5 hours``."""
    seconds = (moment - now).total_seconds()
    if seconds <= 0:
        return "now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            return f"in {count} {unit}{'' if count == 1 else 's'}"
    return "in under a minute"


def money(amount: int, currency: str) -> str:
    """Minor units as the currency's major ones: ``INR 499.00``."""
    return f"{currency} {amount // 100:,}.{amount % 100:02d}"


#: How the recent-activity table names each ledger entry kind.
KIND_LABELS = {
    "opened": "Account opened",
    "period_reset": "New period",
    "term_expired": "Paid term ended",
    "plan_changed": "Plan changed",
    "renewed": "Plan renewed",
    "debited": "Charged",
    "granted": "Credits granted",
    "hold_placed": "Reserved",
    "hold_settled": "Reservation charged",
    "hold_released": "Reservation released",
    "hold_expired": "Reservation expired",
}


def kind_label(kind: str) -> str:
    """An entry kind as a person reads it (an unknown one as itself, spaced)."""
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())
