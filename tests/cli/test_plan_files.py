"""``tokenplans plans --format json|toml`` prints a plan file that TOKENPLANS_PLANS_FILE
accepts, describing the same catalog: order (rank), names, prices, currencies, terms."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import attrs
import pytest
from doc_blocks import DOCS, first_fenced
from hypothesis import given
from hypothesis import strategies as st
from strategies import catalogs

from tokenplans import Pack, PlanCatalog
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.main.plan_files import render_plan_file

#: Any text a plan name can hold, quotes, backslashes and control characters included.
names = st.text(max_size=30)
currencies = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)
#: Feature names: printable ASCII without spaces, quotes and backslashes included.
features = st.lists(
    st.text(alphabet=[chr(code) for code in range(0x21, 0x7F)], min_size=1, max_size=20),
    unique=True,
    max_size=4,
).map(tuple)


#: Top-up packs: a slug id, a positive price and credits, maybe an expiry and a priority.
packs = st.lists(
    st.builds(
        Pack,
        id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12),
        name=names,
        price=st.integers(1, 10**9),
        credits=st.integers(1, 10**12),
        currency=currencies,
        expires_after_days=st.none() | st.integers(1, 36500),
        priority=st.integers(0, 1000),
    ),
    max_size=3,
    unique_by=lambda pack: pack.id,
).map(tuple)


@st.composite
def named_catalogs(draw: st.DrawFn) -> PlanCatalog:
    catalog = draw(catalogs)
    plans = tuple(
        attrs.evolve(plan, name=draw(names), currency=draw(currencies), features=draw(features))
        for plan in catalog
    )
    on_sale = () if any(plan.id == "packs" for plan in plans) else draw(packs)
    return PlanCatalog(plans, on_sale)


@given(named_catalogs())
def test_a_printed_plan_file_loads_back_as_the_same_catalog(catalog: PlanCatalog) -> None:
    assert PlanCatalog.from_mapping(json.loads(render_plan_file(catalog, "json"))) == catalog
    assert PlanCatalog.from_mapping(tomllib.loads(render_plan_file(catalog, "toml"))) == catalog


@pytest.mark.parametrize("file_format", ["json", "toml"])
def test_plans_prints_a_file_that_tokenplans_plans_file_accepts(
    file_format: str,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = workdir / "source.toml"
    source.write_text(
        '[free]\nname = "Free \\"forever\\""\nprice = 0\ntokens = 100\n\n'
        "[trial]\nprice = 0\ntokens = 5000\nduration_days = 14\n\n"
        '[pro]\nprice = 500\ntokens = 50000\nduration_days = 30\ncurrency = "USD"\n'
        'features = ["gpt-4o", "export"]\n\n'
        '[packs.topup]\nname = "Top-up"\nprice = 300\ncredits = 5000\nexpires_after_days = 365\n\n'
        "[packs.big]\nprice = 900\ncredits = 20000\npriority = 3\n"
    )
    monkeypatch.setenv("TOKENPLANS_PLANS_FILE", str(source))
    assert main(["plans", "--format", file_format]) == 0
    printed = workdir / f"printed.{file_format}"
    printed.write_text(capsys.readouterr().out)

    monkeypatch.setenv("TOKENPLANS_PLANS_FILE", str(printed))
    assert main(["plans"]) == 0

    assert PlanCatalog.from_file(printed) == PlanCatalog.from_file(source)
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["trial", "Trial", "0", "INR", "5000", "14", "days", "-"] in rows
    assert ["pro", "Pro", "500", "USD", "50000", "30", "days", "gpt-4o,export"] in rows
    assert ["topup", "Top-up", "300", "INR", "5000", "365", "days", "0"] in rows
    assert ["big", "Big", "900", "INR", "20000", "never", "3"] in rows
    assert len(PlanCatalog.from_file(printed).packs) == 2


def test_plans_json_is_the_json_plan_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plans", "--json"]) == 0

    assert PlanCatalog.from_mapping(json.loads(capsys.readouterr().out)) == PlanCatalog.default()


def test_the_documented_plan_file_examples_are_the_built_in_catalog() -> None:
    guide = DOCS / "configuration.md"
    toml_block = first_fenced(guide, "toml", under="## Plan files")
    json_block = first_fenced(guide, "json", under="## Plan files")

    assert PlanCatalog.from_mapping(tomllib.loads(toml_block)) == PlanCatalog.default()
    assert PlanCatalog.from_mapping(json.loads(json_block)) == PlanCatalog.default()
    assert toml_block == render_plan_file(PlanCatalog.default(), "toml")
