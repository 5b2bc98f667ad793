"""The plan catalog (docs/configuration.md, "Plan files"): the original service's dict, TOML
and JSON files, and every way a catalog can be wrong failing at load time with a message naming
the entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from strategies import catalog_mappings

from tokenplans import REFERENCE_PLAN_CONFIGS, CatalogError, PlanCatalog, UnknownPlanError

# The original service's PLAN_CONFIGS, copied verbatim from its config.py.
PLAN_CONFIGS = {
    "basic": {"id": "basic", "name": "Basic", "price": 0, "tokens": 1000, "duration_days": None},
    "standard": {
        "id": "standard",
        "name": "Standard",
        "price": 2900,
        "tokens": 10000,
        "duration_days": 30,
    },
    "premium": {
        "id": "premium",
        "name": "Premium",
        "price": 9900,
        "tokens": 50000,
        "duration_days": 30,
    },
}

TOML_TABLES = """
[basic]
name = "Basic"
price = 0
tokens = 1000

[standard]
name = "Standard"
price = 2900
tokens = 10000
duration_days = 30

[premium]
id = "premium"
price = 9900
tokens = 50000
duration_days = 30
currency = "INR"
"""

TOML_LIST = """
[[plans]]
id = "basic"
name = "Basic"
price = 0
tokens = 1000

[[plans]]
id = "standard"
name = "Standard"
price = 2900
tokens = 10000
duration_days = 30

[[plans]]
id = "premium"
name = "Premium"
price = 9900
tokens = 50000
duration_days = 30
"""


def summary(catalog: PlanCatalog) -> list[tuple[Any, ...]]:
    return [(p.id, p.price, p.currency, p.tokens, p.duration_days, p.rank) for p in catalog.plans]


REFERENCE_SUMMARY = [
    ("basic", 0, "INR", 1000, None, 0),
    ("standard", 2900, "INR", 10000, 30, 1),
    ("premium", 9900, "INR", 50000, 30, 2),
]


def test_the_references_plan_configs_dict_loads_unchanged() -> None:
    catalog = PlanCatalog.from_mapping(PLAN_CONFIGS)

    assert summary(catalog) == REFERENCE_SUMMARY
    assert catalog.default_plan.id == "basic"
    assert catalog == PlanCatalog.default()
    assert dict(REFERENCE_PLAN_CONFIGS) == PLAN_CONFIGS


def test_the_default_catalog_is_the_references_three_plans_ranked_in_order() -> None:
    catalog = PlanCatalog.default()

    assert [plan.id for plan in catalog] == ["basic", "standard", "premium"]
    assert len(catalog) == 3
    assert "premium" in catalog
    assert "gold" not in catalog
    assert catalog.get("premium").rank == 2
    with pytest.raises(UnknownPlanError) as unknown:
        catalog.get("gold")
    assert unknown.value.plan_id == "gold"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("tables.toml", TOML_TABLES),
        ("list.toml", TOML_LIST),
        ("mapping.json", json.dumps(PLAN_CONFIGS)),
        ("list.json", json.dumps({"plans": list(PLAN_CONFIGS.values())})),
    ],
)
def test_toml_and_json_files_load_in_both_shapes(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    assert summary(PlanCatalog.from_file(path)) == REFERENCE_SUMMARY
    assert summary(PlanCatalog.from_file(str(path))) == REFERENCE_SUMMARY


def with_entry(plan_id: str, **fields: Any) -> dict[str, dict[str, Any]]:
    """The original service's catalog with one entry's fields replaced (None deletes a field)."""
    configs = {key: dict(value) for key, value in PLAN_CONFIGS.items()}
    configs.setdefault(plan_id, {"id": plan_id, "price": 100, "tokens": 10})
    for field, value in fields.items():
        if value is None:
            configs[plan_id].pop(field, None)
        else:
            configs[plan_id][field] = value
    return configs


@pytest.mark.parametrize(
    ("configs", "names"),
    [
        (with_entry("standard", price=-1), ["standard", "price"]),
        (with_entry("standard", tokens=True), ["standard", "tokens"]),
        (with_entry("standard", tokens=1.5), ["standard", "tokens"]),
        (with_entry("premium", duration_days=0), ["premium", "duration_days"]),
        (with_entry("premium", colour="gold"), ["premium", "colour"]),
        (with_entry("premium", id="gold"), ["premium", "gold"]),
        (with_entry("premium", tokens=None), ["premium", "tokens"]),
        (with_entry("premium", currency="rupees"), ["premium", "currency"]),
        (with_entry("bad id!"), ["bad id!"]),
        (with_entry("basic", price=100), ["default plan"]),
        (with_entry("free", price=0, duration_days=None), ["default plan", "basic", "free"]),
        ({"basic": "lots"}, ["basic"]),
        ({}, ["no plans"]),
        (
            {"plans": [PLAN_CONFIGS["basic"], PLAN_CONFIGS["standard"], PLAN_CONFIGS["basic"]]},
            ["basic", "duplicate"],
        ),
    ],
    ids=[
        "negative price",
        "bool tokens",
        "float tokens",
        "zero-day term",
        "unknown field",
        "key/id mismatch",
        "missing tokens",
        "bad currency",
        "bad slug",
        "no default plan",
        "two default plans",
        "entry not a table",
        "empty",
        "duplicate id",
    ],
)
def test_a_bad_catalog_fails_with_a_message_naming_the_entry(
    configs: Any, names: list[str]
) -> None:
    with pytest.raises(CatalogError) as error:
        PlanCatalog.from_mapping(configs)

    for name in names:
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("broken.toml", "[basic\nprice = 0"),
        ("broken.json", '{"basic": {"price": 0,}}'),
        ("catalog.yaml", "basic: {price: 0}"),
    ],
)
def test_an_unparseable_catalog_file_fails_with_a_message_naming_the_file(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    with pytest.raises(CatalogError) as error:
        PlanCatalog.from_file(path)

    assert name in str(error.value)


def test_a_missing_catalog_file_fails_with_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as error:
        PlanCatalog.from_file(tmp_path / "absent.toml")

    assert "absent.toml" in str(error.value)


@given(catalog_mappings())
def test_any_well_formed_catalog_loads_and_keeps_its_order_as_rank(
    configs: dict[str, dict[str, Any]],
) -> None:
    catalog = PlanCatalog.from_mapping(configs)

    assert [plan.id for plan in catalog] == list(configs)
    assert [plan.rank for plan in catalog] == list(range(len(configs)))
    assert catalog.default_plan.price == 0
    assert catalog.default_plan.duration_days is None
