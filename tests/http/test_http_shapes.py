"""Wire shapes derived from attrs classes: a field added to a value or a command shows in
its JSON, its schema and its body parser with no edit at the edge, and the parser is as
strict as the hand-written one was (``true`` is not an integer, unknown fields refused)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from http_support import ALICE, build_app
from starlette.testclient import TestClient

from tokenplans import Hold, InvalidRequestError, Plan, Reserve
from tokenplans._values.described import described
from tokenplans_adapters.http.shapes import Body, Shape
from tokenplans_adapters.http.snapshot import HOLD


@attrs.frozen
class Order:
    """A command as the core declares one: what it asks, its options with defaults."""

    amount: int = attrs.field(metadata=described(minimum=1, maximum=9))
    note: str | None = attrs.field(default=None, metadata=described("Why.", max_length=20))
    rush: bool = False
    #: The option "added later": no edit at the edge makes it parse and document.
    priority: int = attrs.field(default=3, metadata=described(minimum=1, maximum=5))


ORDER = Body(Order)


def test_a_body_is_parsed_into_its_command_with_every_option() -> None:
    assert ORDER.parse({"amount": 2}) == Order(2)
    assert ORDER.parse({"amount": 2, "note": None, "rush": True, "priority": 5}) == Order(
        2, rush=True, priority=5
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], "request body must be a JSON object"),
        ({"amount": 1, "zz": 1, "aa": 2}, "unknown field(s): aa, zz"),
        ({}, "amount is required"),
        ({"amount": None}, "amount is required"),
        ({"amount": True}, "amount must be an integer"),
        ({"amount": 1.0}, "amount must be an integer"),
        ({"amount": "1"}, "amount must be an integer"),
        ({"amount": 1, "rush": 1}, "rush must be a boolean"),
        ({"amount": 1, "priority": False}, "priority must be an integer"),
        ({"amount": 1, "note": 5}, "note must be a string"),
    ],
)
def test_a_body_refuses_what_its_command_does_not_declare(data: object, message: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        ORDER.parse(data)

    assert str(refused.value) == message


def test_a_body_schema_is_closed_with_the_fields_bounds_and_descriptions() -> None:
    assert ORDER.schema(description="An order.") == {
        "type": "object",
        "required": ["amount"],
        "additionalProperties": False,
        "description": "An order.",
        "properties": {
            "amount": {"type": "integer", "minimum": 1, "maximum": 9},
            "note": {
                "anyOf": [{"type": "string", "maxLength": 20}, {"type": "null"}],
                "description": "Why.",
            },
            "rush": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            "priority": {
                "anyOf": [{"type": "integer", "minimum": 1, "maximum": 5}, {"type": "null"}]
            },
        },
    }


def test_a_type_no_body_can_carry_fails_when_the_body_is_declared() -> None:
    @attrs.frozen
    class Odd:
        when: datetime

    with pytest.raises(TypeError, match="when: no JSON body type"):
        Body(Odd)


def test_a_shape_renders_and_documents_every_field_in_its_order() -> None:
    shape = Shape(Plan, lead=("id", "name", "price", "currency"))
    plan = Plan("pro", "Pro", 900, 100, None, 1)

    assert list(shape.json(plan)) == [*shape.names] == [*shape.properties()]
    assert shape.json(plan) == {
        "id": "pro",
        "name": "Pro",
        "price": 900,
        "currency": "INR",
        "tokens": 100,
        "duration_days": None,
        "rank": 1,
        "features": [],
        "rollover_max": None,
        "rollover_periods": None,
    }
    assert shape.properties()["duration_days"] == {
        "anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]
    }
    # A tuple is an array, each item bounded as the field says.
    assert shape.json(attrs.evolve(plan, features=("gpt-4o",)))["features"] == ["gpt-4o"]
    assert shape.properties()["features"]["items"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
    }


def test_a_hold_answer_and_its_schema_name_the_same_fields() -> None:
    client = TestClient(build_app())
    placed = client.post("/api/tokens/holds", json={"amount": 5}, headers=ALICE).json()
    schemas: dict[str, Any] = client.get("/openapi.json").json()["components"]["schemas"]
    hold = Hold("alice", "alice", "h", 5, datetime(2026, 1, 1, tzinfo=UTC), datetime.now(UTC))

    assert set(HOLD.json(hold)) == set(schemas["Hold"]["properties"]) == set(HOLD.names)
    assert set(placed) >= set(HOLD.names)
    assert "subject" not in HOLD.names
    assert "placed_by" in HOLD.names


def test_the_reserve_body_is_the_reserve_command() -> None:
    schemas = TestClient(build_app()).get("/openapi.json").json()["components"]["schemas"]

    assert list(schemas["ReserveRequest"]["properties"]) == [
        field.name for field in attrs.fields(Reserve)
    ]
