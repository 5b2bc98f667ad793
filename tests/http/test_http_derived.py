"""What the edge derives instead of copying: the usage answer and its schemas from the
core's ``Usage`` fields, the document's enums and maxima from the core's constants, and
closing what the composition root hands over when the app shuts down."""

from __future__ import annotations

from typing import Any

import attrs
from http_support import ALICE, ROOT, build_app
from starlette.testclient import TestClient

from tokenplans import (
    MAX_AMOUNT,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_PAGE_SIZE,
    MAX_SUBJECT_LENGTH,
    EntryKind,
    Usage,
)

USAGE_FIELDS = {field.name for field in attrs.fields(Usage)}


def _document() -> dict[str, Any]:
    document: dict[str, Any] = TestClient(build_app()).get("/openapi.json").json()
    return document


def test_every_usage_answer_and_schema_has_exactly_the_usage_fields() -> None:
    client = TestClient(build_app())
    schemas = _document()["components"]["schemas"]

    answers = {
        "Usage": client.get("/api/tokens/usage", headers=ALICE).json(),
        "ConsumeResponse": client.post(
            "/api/tokens/consume", json={"amount": 1}, headers=ALICE
        ).json(),
        "SetPlanResponse": client.post(
            "/api/tokens/set-plan", json={"plan": "basic"}, headers=ALICE
        ).json(),
    }

    # ``lots`` shows only on an account with lots beyond its plan lot (alice has none).
    shown = USAGE_FIELDS - {"lots"}
    assert set(schemas["Usage"]["properties"]) == USAGE_FIELDS
    # The usage answer adds the plan's features, and its schema says so.
    assert set(answers["Usage"]) == {*shown, "features"}
    assert set(schemas["UsageAnswer"]["properties"]) == {*USAGE_FIELDS, "features"}
    for name, answer in answers.items():
        assert set(answer) >= shown, name
        assert set(schemas[name]["required"]) >= shown, name
        properties = schemas[name]["properties"]
        assert {field: properties[field] for field in USAGE_FIELDS} == schemas["Usage"][
            "properties"
        ], name


def test_a_ledger_entry_shows_the_snapshot_fields_its_schema_names() -> None:
    client = TestClient(build_app())
    client.post("/api/tokens/consume", json={"amount": 1}, headers=ALICE)
    entry = client.get("/api/tokens/ledger", headers=ALICE).json()["entries"][0]
    schema = _document()["components"]["schemas"]["LedgerEntry"]

    assert set(entry) == set(schema["properties"])
    for field in set(entry) & USAGE_FIELDS:
        assert (
            schema["properties"][field]
            == _document()["components"]["schemas"]["Usage"]["properties"][field]
        )


def test_the_documents_enums_and_maxima_are_the_cores() -> None:
    document = _document()
    schemas = document["components"]["schemas"]
    paths = document["paths"]
    limit = paths["/api/tokens/ledger"]["get"]["parameters"][1]
    subject = paths["/api/admin/accounts/{subject}"]["get"]["parameters"][0]
    key = schemas["ConsumeRequest"]["properties"]["idempotency_key"]["anyOf"][0]

    assert schemas["ConsumeRequest"]["properties"]["amount"]["anyOf"][0]["maximum"] == MAX_AMOUNT
    assert schemas["GrantRequest"]["properties"]["amount"]["maximum"] == MAX_AMOUNT
    assert key["maxLength"] == MAX_IDEMPOTENCY_KEY_LENGTH
    assert subject["schema"]["maxLength"] == MAX_SUBJECT_LENGTH
    assert limit["schema"]["maximum"] == MAX_PAGE_SIZE
    assert schemas["LedgerEntry"]["properties"]["kind"]["enum"] == [k.value for k in EntryKind]


def test_the_closers_run_once_when_the_app_shuts_down_and_not_before() -> None:
    closed: list[str] = []
    app = build_app(on_shutdown=[lambda: closed.append("engine"), lambda: closed.append("http")])

    with TestClient(app) as client:
        assert client.get("/api/tokens/usage", headers=ROOT).status_code == 200
        assert closed == []

    assert closed == ["engine", "http"]
