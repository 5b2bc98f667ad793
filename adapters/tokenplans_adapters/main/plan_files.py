"""A plan catalog written back as the ``.json`` or ``.toml`` plan file that
``TOKENPLANS_PLANS_FILE`` accepts (``tokenplans plans --format``)."""

from __future__ import annotations

import json

from tokenplans import PlanCatalog


class UnwritablePlanError(ValueError):
    """A catalog this file format cannot carry (the command says so, and exits 2)."""


def render_plan_file(catalog: PlanCatalog, file_format: str) -> str:
    """``catalog`` as the text of a ``.json`` or ``.toml`` plan file."""
    if file_format == "json":
        return json.dumps(plan_file(catalog), indent=2) + "\n"
    return _toml(catalog)


def plan_file(catalog: PlanCatalog) -> dict[str, dict[str, object]]:
    """``catalog`` as a plan file: ``{plan_id: fields}`` in rank order (lowest first).
    Rank and default are implied: the order is the rank, and the default is the plan
    with price 0 and no ``duration_days``."""
    return {
        plan.id: {
            "name": plan.name,
            "price": plan.price,
            "currency": plan.currency,
            "tokens": plan.tokens,
            "duration_days": plan.duration_days,
            # Only a plan that lists features says so: a file without any reads as before.
            **({"features": list(plan.features)} if plan.features else {}),
        }
        for plan in catalog
    }


def _toml(catalog: PlanCatalog) -> str:
    """The plan file as TOML: one table per plan (plan ids are valid bare keys), with no
    ``duration_days`` line for a plan without a term (TOML has no null)."""
    tables = []
    for plan_id, fields in plan_file(catalog).items():
        lines = [f"[{plan_id}]"]
        for name, value in fields.items():
            if isinstance(value, str):
                lines.append(f"{name} = {_toml_string(value, plan_id)}")
            elif isinstance(value, list):
                items = ", ".join(_toml_string(str(item), plan_id) for item in value)
                lines.append(f"{name} = [{items}]")
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
            f"plan {plan_id!r}: its name cannot be written as TOML; use --format json"
        ) from None
    escaped = text.translate(_TOML_ESCAPES)
    return f'"{escaped}"'
