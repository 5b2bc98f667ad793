"""Usage reports, the top spenders and the accounts list over HTTP: JSON and CSV, the
range and grouping checks (422), who may read what (403), and the keyset pages."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from http_support import ALICE, BOB, ROOT
from starlette.testclient import TestClient

from tokenplans import ModelUsage, PlanCatalog, Principal, TokenService
from tokenplans.testing import SettableClock

REPORT = "/api/tokens/usage/report"
DECEMBER = {"from": "2026-12-01", "to": "2026-12-31"}


@pytest.fixture
def spent(service: TokenService, clock: SettableClock) -> TokenService:
    """Alice spends on two days (a plain amount and two models), Bob on one."""
    alice, bob = Principal("alice"), Principal("bob")
    clock.set(datetime(2026, 12, 1, 23, 59, tzinfo=UTC))
    service.consume(alice, 10)
    service.consume(alice, usage=ModelUsage("gpt-4o", 100, 20, cache_read_tokens=5))
    clock.advance(minutes=2)  # December 2nd
    service.consume(alice, usage=ModelUsage("gpt-4o", 7, 3, reasoning_tokens=1))
    service.consume(alice, usage=ModelUsage("=1+2", 1, 1))  # a model that looks like a formula
    service.consume(bob, 500)
    return service


def _counts(credits: int, calls: int, *tokens: int) -> dict[str, int]:
    names = ("input", "output", "cache_read", "cache_write", "reasoning")
    padded = [*tokens, *[0] * (5 - len(tokens))]
    return {
        "credits": credits,
        "calls": calls,
        **{f"{n}_tokens": v for n, v in zip(names, padded, strict=True)},
    }


@pytest.mark.usefixtures("spent")
def test_the_callers_report_by_day_and_model_with_totals(client: TestClient) -> None:
    answer = client.get(REPORT, params={**DECEMBER, "group_by": "day,model"}, headers=ALICE)

    assert answer.status_code == 200
    assert answer.json() == {
        "subject": "alice",
        "from": "2026-12-01",
        "to": "2026-12-31",
        "group_by": ["day", "model"],
        "rows": [
            {"day": "2026-12-01", "model": "", **_counts(10, 1)},
            {"day": "2026-12-01", "model": "gpt-4o", **_counts(125, 1, 100, 20, 5)},
            {"day": "2026-12-02", "model": "=1+2", **_counts(2, 1, 1, 1)},
            {"day": "2026-12-02", "model": "gpt-4o", **_counts(11, 1, 7, 3, 0, 0, 1)},
        ],
        "totals": _counts(148, 4, 108, 24, 5, 0, 1),
    }


@pytest.mark.usefixtures("spent")
def test_grouped_by_day_by_model_or_not_at_all(client: TestClient) -> None:
    def rows(group_by: str | None) -> list[tuple[object, object, int]]:
        params = DECEMBER if group_by is None else {**DECEMBER, "group_by": group_by}
        body = client.get(REPORT, params=params, headers=ALICE).json()
        return [(r["day"], r["model"], r["credits"]) for r in body["rows"]]

    assert rows(None) == [("2026-12-01", None, 135), ("2026-12-02", None, 13)]
    assert rows("model") == [(None, "", 10), (None, "=1+2", 2), (None, "gpt-4o", 136)]
    assert rows("") == [(None, None, 148)]


@pytest.mark.usefixtures("spent")
def test_a_day_with_nothing_spent_has_no_row_and_an_empty_range_reports_zeros(
    client: TestClient,
) -> None:
    body = client.get(
        REPORT, params={"from": "2026-11-01", "to": "2026-11-30"}, headers=ALICE
    ).json()
    assert (body["rows"], body["totals"]) == ([], _counts(0, 0))


@pytest.mark.usefixtures("spent")
def test_csv_is_the_rows_with_a_header_and_formulas_defused(client: TestClient) -> None:
    answer = client.get(
        REPORT,
        params={**DECEMBER, "group_by": "day,model"},
        headers={**ALICE, "Accept": "text/csv"},
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="usage-2026-12-01-2026-12-31.csv"' in answer.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(answer.text)))
    assert table[0] == [
        "day",
        "model",
        "credits",
        "calls",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    ]
    assert table[1:] == [
        ["2026-12-01", "", "10", "1", "0", "0", "0", "0", "0"],
        ["2026-12-01", "gpt-4o", "125", "1", "100", "20", "5", "0", "0"],
        ["2026-12-02", "'=1+2", "2", "1", "1", "1", "0", "0", "0"],
        ["2026-12-02", "gpt-4o", "11", "1", "7", "3", "0", "0", "1"],
    ]
    by_model = client.get(
        REPORT,
        params={**DECEMBER, "group_by": "model"},
        headers={**ALICE, "Accept": "text/html, text/csv;q=0.9"},
    )
    assert next(csv.reader(io.StringIO(by_model.text)))[:2] == ["model", "credits"]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"from": "2026-12-02", "to": "2026-12-01"}, "must not be after"),
        ({"from": "2026-01-01", "to": "2027-01-02"}, "at most 366 days"),
        ({"to": "2026-12-01"}, "from is required"),
        ({"from": "2026-12-01"}, "to is required"),
        ({"from": "2026-12-1", "to": "2026-12-31"}, "YYYY-MM-DD"),
        ({"from": "20261201", "to": "2026-12-31"}, "YYYY-MM-DD"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "not a day"),
        ({**DECEMBER, "group_by": "week"}, "group_by"),
        ({**DECEMBER, "group_by": "day,day"}, "group_by"),
        ({**DECEMBER, "group_by": "model,day,"}, "group_by"),
        ({**DECEMBER, "subject": "bob"}, "unknown query parameter"),
    ],
)
def test_a_bad_range_or_grouping_is_a_422(
    client: TestClient, params: dict[str, str], says: str
) -> None:
    answer = client.get(REPORT, params=params, headers=ALICE)
    assert answer.status_code == 422
    assert says in answer.json()["message"]


def test_a_leap_year_is_the_longest_report(client: TestClient) -> None:
    answer = client.get(REPORT, params={"from": "2028-01-01", "to": "2028-12-31"}, headers=ALICE)
    assert answer.status_code == 200


@pytest.mark.usefixtures("spent")
def test_a_user_reads_no_one_elses_report_nor_every_ones(client: TestClient) -> None:
    for path in (
        "/api/admin/accounts/bob/usage/report",
        "/api/admin/usage/report",
        "/api/admin/usage/top-spenders",
    ):
        answer = client.get(path, params=DECEMBER, headers=ALICE)
        assert answer.status_code == 403, path
        assert "bob" not in answer.text
    assert client.get("/api/admin/accounts", headers=ALICE).status_code == 403
    assert client.get(REPORT, params=DECEMBER).status_code == 401


@pytest.mark.usefixtures("spent")
def test_an_admin_reads_one_subjects_report_and_every_subjects(client: TestClient) -> None:
    bobs = client.get("/api/admin/accounts/bob/usage/report", params=DECEMBER, headers=ROOT).json()
    assert (bobs["subject"], bobs["rows"]) == (
        "bob",
        [{"day": "2026-12-02", "model": None, **_counts(500, 1)}],
    )
    everyone = client.get(
        "/api/admin/usage/report", params={**DECEMBER, "group_by": "day"}, headers=ROOT
    ).json()
    assert everyone["subject"] is None
    assert [(r["day"], r["credits"]) for r in everyone["rows"]] == [
        ("2026-12-01", 135),
        ("2026-12-02", 513),
    ]
    assert everyone["totals"]["credits"] == 648


@pytest.mark.usefixtures("spent")
def test_the_top_spenders_page_most_first_in_json_and_csv(
    client: TestClient, service: TokenService
) -> None:
    service.consume(Principal("=cmd"), 148)  # ties with alice; a subject like a formula
    first = client.get(
        "/api/admin/usage/top-spenders", params={**DECEMBER, "limit": "2"}, headers=ROOT
    ).json()
    assert [(r["subject"], r["credits"]) for r in first["rows"]] == [("bob", 500), ("=cmd", 148)]
    second = client.get(
        "/api/admin/usage/top-spenders",
        params={**DECEMBER, "limit": "2", "cursor": first["next_cursor"]},
        headers=ROOT,
    ).json()
    assert [(r["subject"], r["credits"]) for r in second["rows"]] == [("alice", 148)]
    assert second["next_cursor"] is None
    table = client.get(
        "/api/admin/usage/top-spenders",
        params=DECEMBER,
        headers={**ROOT, "Accept": "text/csv"},
    ).text
    assert [row[:2] for row in csv.reader(io.StringIO(table))] == [
        ["subject", "credits"],
        ["bob", "500"],
        ["'=cmd", "148"],
        ["alice", "148"],
    ]
    bad = client.get(
        "/api/admin/usage/top-spenders", params={**DECEMBER, "cursor": "x.y"}, headers=ROOT
    )
    assert bad.status_code == 422


def test_the_accounts_list_pages_by_subject_and_filters_by_plan(
    client: TestClient, service: TokenService
) -> None:
    catalog = PlanCatalog.default()
    paid = next(plan for plan in catalog if plan.duration_days is not None).id
    for i in range(5):
        service.consume(Principal(f"user-{i}"), 1 + i)
    for i in (1, 3):
        service.set_plan(Principal("root", {"tokenplans:admin"}), paid, subject=f"user-{i}")

    def pages(**params: str) -> list[list[tuple[str, str]]]:
        seen: list[list[tuple[str, str]]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": "2", **({"cursor": cursor} if cursor else {})}
            answer = client.get("/api/admin/accounts", params=query, headers=ROOT)
            assert answer.status_code == 200
            body = answer.json()
            seen.append([(a["subject"], a["plan"]) for a in body["accounts"]])
            cursor = body["next_cursor"]
            if cursor is None:
                return seen

    default = catalog.default_plan.id
    assert pages() == [
        [("user-0", default), ("user-1", paid)],
        [("user-2", default), ("user-3", paid)],
        [("user-4", default)],
    ]
    assert pages(plan=paid) == [[("user-1", paid), ("user-3", paid)], []]
    assert [s for page in pages(plan=default) for s, _ in page] == ["user-0", "user-2", "user-4"]
    first = client.get("/api/admin/accounts", params={"limit": "1"}, headers=ROOT).json()
    assert set(first["accounts"][0]) >= {"token_used", "remaining", "token_quota", "plan"}
    assert first["accounts"][0]["token_used"] == 1
    unknown = client.get("/api/admin/accounts", params={"plan": "nope"}, headers=ROOT)
    assert unknown.status_code == 400
    too_many = client.get("/api/admin/accounts", params={"limit": "201"}, headers=ROOT)
    assert too_many.status_code == 422


def test_bob_cannot_read_alices_report_through_his_own_route(client: TestClient) -> None:
    answer = client.get(REPORT, params=DECEMBER, headers=BOB).json()
    assert answer["subject"] == "bob"
