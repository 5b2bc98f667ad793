"""Facts per entry kind and the one expiry mechanism, as the lots to come will use them."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta
from functools import partial

import attrs
import pytest

from tokenplans import (
    Account,
    DebitFacts,
    EntryKind,
    HoldFacts,
    LedgerEntry,
    PaymentFacts,
    PlanCatalog,
)
from tokenplans._rules.expiry import lapse_in_order
from tokenplans._rules.quota import open_account
from tokenplans._values.expiring import Expiry
from tokenplans._values.ledger import FACTS_OF_KIND, Change, ledger_change
from tokenplans._values.lots import Draw
from tokenplans.ports import FACT_CLASSES, facts_from_json, facts_json

CATALOG = PlanCatalog.default()
JAN_15 = datetime(2026, 1, 15, 12, tzinfo=UTC)
_JSON_SCALARS = {str, int, bool, type(None)}


def test_every_facts_class_is_json_scalars_named_apart_from_the_common_fields() -> None:
    """JSON scalars, and one list: ``draws``, the lots a change drew from."""
    common = {field.name for field in attrs.fields(LedgerEntry)}
    assert set(FACTS_OF_KIND.values()) == set(FACT_CLASSES)
    for facts in FACT_CLASSES:
        for name, hint in typing.get_type_hints(facts).items():
            if name == "draws":
                assert hint == tuple[Draw, ...], (facts, name)
                continue
            assert set(typing.get_args(hint) or (hint,)) <= _JSON_SCALARS, (facts, name)
            assert name not in common, (facts, name)


@pytest.mark.parametrize(
    ("kind", "facts"),
    [
        (EntryKind.DEBITED, DebitFacts("key-1")),
        (EntryKind.HOLD_SETTLED, HoldFacts("h", overage=3)),
        (EntryKind.HOLD_PLACED, HoldFacts("h")),
        (EntryKind.RENEWED, PaymentFacts("pay_1")),
    ],
)
def test_facts_go_to_json_and_back_by_the_entrys_kind(kind: EntryKind, facts: object) -> None:
    stored = facts_json(facts)

    assert facts_from_json(kind, stored) == facts


def test_an_entry_refuses_facts_its_kind_does_not_carry() -> None:
    account = open_account("alice", CATALOG, JAN_15).account

    with pytest.raises(TypeError, match="debited entry cannot carry"):
        ledger_change(
            account, EntryKind.DEBITED, JAN_15, message="x", facts=HoldFacts("h"), token_used=1
        )
    with pytest.raises(TypeError, match="opened entry cannot carry"):
        ledger_change(account, EntryKind.OPENED, JAN_15, message="x", facts=DebitFacts("k"))


def _grant_back(account: Account, *, amount: int, at: datetime) -> Change:
    """A stand-in for a kind of expiring thing that is not a hold (a lot, say): its lapse
    takes ``amount`` off the quota."""
    return ledger_change(
        account,
        EntryKind.GRANTED,
        at,
        message=f"lapsed {amount}",
        token_quota=account.token_quota - amount,
    )


def test_any_expiry_lapses_at_its_instant_between_the_resets_in_instant_then_key_order() -> None:
    account = open_account("alice", CATALOG, JAN_15).account
    feb_1 = datetime(2026, 2, 1, tzinfo=UTC)
    late = feb_1 + timedelta(days=3)
    expiries = [
        Expiry(late, ("lot", "b"), partial(_grant_back, amount=2, at=late)),
        Expiry(feb_1, ("lot", "a"), partial(_grant_back, amount=1, at=feb_1)),
        Expiry(late, ("lot", "a"), partial(_grant_back, amount=3, at=late)),
        Expiry(late + timedelta(days=99), ("lot", "z"), partial(_grant_back, amount=9, at=late)),
    ]

    change, _writes = lapse_in_order(account, CATALOG, late + timedelta(days=1), expiries)

    assert [(e.kind, e.at, e.quota_delta) for e in change.entries] == [
        # The reset at the lapse's very instant comes first.
        (EntryKind.PERIOD_RESET, feb_1, 0),
        (EntryKind.GRANTED, feb_1, -1),
        (EntryKind.GRANTED, late, -3),
        (EntryKind.GRANTED, late, -2),
    ]
