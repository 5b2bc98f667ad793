"""Rows <-> core values: each value's columns read from its attrs fields, so a new field
on a value is a new column (schema and migration), not an edit here.

A ledger entry is its common columns, its priced call (one column per field, all
``NULL`` on an entry that was not priced: reports group by model), the snapshot after it
and its kind's ``facts`` as one JSON value: a new kind of fact needs no column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy import Row

from tokenplans import Account, EntryKind, ModelUsage, PricedCall, Usage
from tokenplans.ports import (
    DebitReceipt,
    Hold,
    HoldStatus,
    LedgerEntry,
    Payment,
    PaymentStatus,
    draws_of,
    facts_from_json,
    facts_json,
    lots_from_json,
    lots_json,
)

#: The snapshot's fields, read from the value.
_ACCOUNT_FIELDS = tuple(field.name for field in attrs.fields(Account))
_PAYMENT_FIELDS = tuple(field.name for field in attrs.fields(Payment))
#: A hold's stored fields: all but ``replayed`` and ``priced``, which belong to one answer.
_HOLD_FIELDS = tuple(
    field.name
    for field in attrs.fields(Hold)
    if field.name not in ("replayed", "priced", "usage")  # answers', not stored
)


def account_values(account: Account) -> dict[str, Any]:
    values = {name: getattr(account, name) for name in _ACCOUNT_FIELDS if name != "subject"}
    return {**values, "lots": lots_json(account.lots) if account.lots else None}


def account_from_row(row: Row[Any] | Mapping[Any, Any]) -> Account:
    m = row._mapping if isinstance(row, Row) else row
    values = {name: m[name] for name in _ACCOUNT_FIELDS}
    stored = m["lots"]
    return Account(**{**values, "lots": lots_from_json(stored) if stored else ()})


#: An entry's own plain columns: every LedgerEntry field but the snapshot after it, the
#: priced call and the facts (columns of their own) and the kind (stored as its value).
_ENTRY_COLUMNS = tuple(
    field.name
    for field in attrs.fields(LedgerEntry)
    if field.name not in ("after", "priced", "facts", "kind")
)


def entry_values(entry: LedgerEntry) -> dict[str, Any]:
    # The snapshot after the entry, column for column, then the entry's own columns.
    return {
        "subject": entry.after.subject,
        **account_values(entry.after),
        **{name: getattr(entry, name) for name in _ENTRY_COLUMNS},
        **priced_values(entry.priced),
        "kind": entry.kind.value,
        "facts": facts_json(entry.facts),
    }


def entry_from_row(row: Row[Any]) -> LedgerEntry:
    m = row._mapping
    kind = EntryKind(m["kind"])
    return LedgerEntry(
        kind=kind,
        **{name: m[name] for name in _ENTRY_COLUMNS},
        after=account_from_row(m),
        priced=priced_from_row(m),
        facts=facts_from_json(kind, m["facts"]),
    )


# A priced entry's call, one column per field of its usage, then credits and version.
_USAGE_FIELDS = tuple(field.name for field in attrs.fields(ModelUsage))
_PRICED_COLUMNS = (*_USAGE_FIELDS, "credits", "price_version")


def priced_values(priced: PricedCall | None) -> dict[str, Any]:
    if priced is None:
        return dict.fromkeys(_PRICED_COLUMNS)
    return {
        **{name: getattr(priced.usage, name) for name in _USAGE_FIELDS},
        "credits": priced.credits,
        "price_version": priced.price_version,
    }


def priced_from_row(m: Mapping[Any, Any]) -> PricedCall | None:
    if m["model"] is None:
        return None
    return PricedCall(
        ModelUsage(**{name: m[name] for name in _USAGE_FIELDS}),
        credits=m["credits"],
        price_version=m["price_version"],
    )


#: A receipt's own columns: every DebitReceipt field but the usage, priced call and
#: message (the ledger entry's) and ``replayed`` (an answer's, not a stored fact).
_RECEIPT_FIELDS = tuple(
    field.name
    for field in attrs.fields(DebitReceipt)
    if field.name not in ("usage", "priced", "replayed", "message")
)


def receipt_values(receipt: DebitReceipt) -> dict[str, Any]:
    return {name: getattr(receipt, name) for name in _RECEIPT_FIELDS}


def receipt_from_row(row: Row[Any], entry: LedgerEntry) -> DebitReceipt:
    m = row._mapping
    return DebitReceipt(
        **{name: m[name] for name in _RECEIPT_FIELDS},
        usage=Usage.of(entry.after),
        priced=entry.priced,
        message=entry.message,
    )


def payment_values(payment: Payment) -> dict[str, Any]:
    values = {name: getattr(payment, name) for name in _PAYMENT_FIELDS}
    return {**values, "status": payment.status.value}


def payment_from_row(row: Row[Any]) -> Payment:
    m = row._mapping
    return Payment(
        **{**{name: m[name] for name in _PAYMENT_FIELDS}, "status": PaymentStatus(m["status"])}
    )


def hold_values(hold: Hold) -> dict[str, Any]:
    values = {name: getattr(hold, name) for name in _HOLD_FIELDS}
    draws = [attrs.asdict(draw) for draw in hold.draws] or None
    return {**values, "status": hold.status.value, "draws": draws}


def hold_from_row(row: Row[Any] | Mapping[str, Any]) -> Hold:
    m = row._mapping if isinstance(row, Row) else row
    values = {name: m[name] for name in _HOLD_FIELDS}
    return Hold(
        **{
            **values,
            "status": HoldStatus(m["status"]),
            "late": bool(m["late"]),
            "draws": draws_of(m["draws"]) if m["draws"] else (),
        }
    )
