"""A plan catalog written back as the ``.json`` or ``.toml`` plan file that
``TOKENPLANS_PLANS_FILE`` accepts (``tokenplans plans --format``)."""

from __future__ import annotations

import json
from typing import Any

from tokenplans import Pack, PlanCatalog


class UnwritablePlanError(ValueError):
    """A catalog this file format cannot carry (the command says so, and exits 2)."""


def render_plan_file(catalog: PlanCatalog, file_format: str) -> str:
    """``catalog`` as the text of a ``.json`` or ``.toml`` plan file."""
    if file_format == "json":
        return json.dumps(plan_file(catalog), indent=2) + "\n"
    return _toml(catalog)


def plan_file(catalog: PlanCatalog) -> dict[str, dict[str, Any]]:
    """``catalog`` as a plan file: ``{plan_id: fields}`` in rank order (lowest first),
    then ``"packs": {pack_id: fields}`` when it has packs. Rank and default are implied:
    the order is the rank, and the default is the plan with price 0 and no
    ``duration_days``."""
    plans: dict[str, dict[str, Any]] = {
        plan.id: {
            "name": plan.name,
            "price": plan.price,
            "currency": plan.currency,
            "tokens": plan.tokens,
            "duration_days": plan.duration_days,
            # Only a plan that lists features says so: a file without any reads as before.
            **({"features": list(plan.features)} if plan.features else {}),
            **(
                {"rollover": {"max": plan.rollover_max, "periods": plan.rollover_periods}}
                if plan.rollover_max is not None
                else {}
            ),
        }
        for plan in catalog
    }
    if catalog.packs:
        plans["packs"] = {pack.id: _pack_fields(pack) for pack in catalog.packs}
    return plans


def _pack_fields(pack: Pack) -> dict[str, Any]:
    return {
        "name": pack.name,
        "price": pack.price,
        "currency": pack.currency,
        "credits": pack.credits,
        "expires_after_days": pack.expires_after_days,
        "priority": pack.priority,
    }


def _toml(catalog: PlanCatalog) -> str:
    """The plan file as TOML: one table per plan (plan ids are valid bare keys), then one
    ``[packs.<id>]`` table per pack, with no line for a field that is none (a plan
    without a term, a pack that never expires: TOML has no null)."""
    tables = []
    file = plan_file(catalog)
    packs = file.pop("packs", {}) if catalog.packs else {}
    named = [(plan_id, plan_id, fields) for plan_id, fields in file.items()]
    named += [(f"packs.{pack_id}", pack_id, fields) for pack_id, fields in packs.items()]
    for header, item_id, fields in named:
        lines = [f"[{header}]"]
        for name, value in fields.items():
            if isinstance(value, str):
                lines.append(f"{name} = {_toml_string(value, item_id)}")
            elif isinstance(value, list):
                items = ", ".join(_toml_string(str(item), item_id) for item in value)
                lines.append(f"{name} = [{items}]")
            elif isinstance(value, dict):
                pairs = ", ".join(f"{key} = {each}" for key, each in value.items())
                lines.append(f"{name} = {{{pairs}}}")
            elif value is not None:
                lines.append(f"{name} = {value}")
        tables.append("\n".join(lines) + "\n")
    return "\n".join(tables)


_TOML_ESCAPES = {
    ord('"'): '\\"',
    ord("\\"): "\\\\",
    **{code: f"\\u{code:04X}" for code in [*range(ord(" ")), ord("\x7f")]},
}


def _toml_string(text: str, plan_id: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a JSON file's "\ud800"
        raise UnwritablePlanError(
            f"{plan_id!r}: its name cannot be written as TOML; use --format json"
        ) from None
    escaped = text.translate(_TOML_ESCAPES)
    return f'"{escaped}"'
