"""Plans and the validated catalog they live in (README, "How quotas work")."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from tokenplans.errors import CatalogError, UnknownPackError, UnknownPlanError

from .described import described
from .limits import MAX_AMOUNT, MAX_FEATURE_LENGTH, is_feature_name

#: The default catalog in the ``PLAN_CONFIGS`` shape of the FastAPI app tokenplans grew
#: from, kept so that app's frontend and its numbers keep working.
REFERENCE_PLAN_CONFIGS: Mapping[str, Mapping[str, Any]] = {
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

_MAX_ID_LENGTH = 64
_FIELDS = frozenset(
    {"id", "name", "price", "currency", "tokens", "duration_days", "features", "rollover"}
)
#: The fields of a plan's ``rollover`` table.
_ROLLOVER_FIELDS = frozenset({"max", "periods"})
#: At most this many periods a rollover lot lasts.
MAX_ROLLOVER_PERIODS = 120
#: The fields of a pack (``[packs.<id>]``).
_PACK_FIELDS = frozenset(
    {"id", "name", "price", "currency", "credits", "expires_after_days", "priority"}
)
#: A pack's credits last at most this many days (a hundred years); none: never expire.
MAX_PACK_DAYS = 36500
#: A pack's priority, as a lot's: 0 to this, lower burns first.
MAX_PACK_PRIORITY = 1000


def _non_negative_int(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    # bool is an int in Python; a plan costing ``True`` paise is a typo, not a price.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CatalogError(f"{attribute.name} must be a non-negative integer, got {value!r}")


def _term_days(
    _instance: object, _attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"duration_days must be a positive integer or none, got {value!r}")


def _slug(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > _MAX_ID_LENGTH
        or not value.isascii()
    ):
        raise CatalogError(f"{attribute.name} must be 1-64 ASCII characters, got {value!r}")
    if not all(ch.isalnum() or ch in "-_" for ch in value):
        raise CatalogError(f"{attribute.name} may hold letters, digits, - and _, got {value!r}")


def _currency(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if not (isinstance(value, str) and len(value) == len("INR") and value.isascii()):
        raise CatalogError(f"currency must be a 3-letter ISO code like 'INR', got {value!r}")
    if not value.isalpha() or not value.isupper():
        raise CatalogError(f"currency must be a 3-letter ISO code like 'INR', got {value!r}")


def _features(value: object) -> tuple[str, ...]:
    """A plan's ``features`` as given (a list or tuple of names) as a tuple, in order."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise CatalogError(f"features must be a list of names, got {value!r}")
    return tuple(value)


def _feature_names(
    _instance: object, _attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    for name in value:
        if not is_feature_name(name):
            raise CatalogError(
                f"a feature is 1 to {MAX_FEATURE_LENGTH} printable ASCII characters "
                f"without spaces, got {name!r}"
            )
    if len(set(value)) != len(value):
        raise CatalogError(f"features are listed twice: {sorted(set(value))}")


@attrs.frozen
class Plan:
    """One tier of the catalog. ``rank`` is its position: higher means a better tier."""

    id: str = attrs.field(validator=_slug)
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    price: int = attrs.field(
        validator=_non_negative_int, metadata=described("Minor units (paise for INR).")
    )
    tokens: int = attrs.field(validator=_non_negative_int)
    duration_days: int | None = attrs.field(validator=_term_days, metadata=described(minimum=1))
    rank: int = attrs.field(validator=_non_negative_int)
    currency: str = attrs.field(default="INR", validator=_currency)
    features: tuple[str, ...] = attrs.field(
        default=(),
        converter=_features,
        validator=_feature_names,
        metadata=described(
            "What the plan unlocks besides credits (a model, an export): names a host "
            "checks with `check` or `require_feature`.",
            min_length=1,
            max_length=MAX_FEATURE_LENGTH,
        ),
    )
    rollover_max: int | None = attrs.field(
        default=None,
        metadata=described(
            "At a calendar reset, up to this many unused allowance credits roll over into "
            "a rollover lot; null: none."
        ),
    )
    rollover_periods: int | None = attrs.field(
        default=None,
        metadata=described(
            "How many periods after its own a rollover lot lasts; null with rollover_max.",
            minimum=1,
        ),
    )

    def __attrs_post_init__(self) -> None:
        if (self.rollover_max is None) != (self.rollover_periods is None):
            raise CatalogError("rollover needs both max and periods")
        if self.rollover_max is not None and (
            isinstance(self.rollover_max, bool)
            or not isinstance(self.rollover_max, int)
            or self.rollover_max < 0
        ):
            raise CatalogError(
                f"rollover max must be a non-negative integer, got {self.rollover_max!r}"
            )
        periods = self.rollover_periods
        if periods is not None and (
            isinstance(periods, bool)
            or not isinstance(periods, int)
            or not 1 <= periods <= MAX_ROLLOVER_PERIODS
        ):
            raise CatalogError(
                f"rollover periods must be an integer from 1 to {MAX_ROLLOVER_PERIODS}, "
                f"got {periods!r}"
            )

    @property
    def rolls_over(self) -> bool:
        return bool(self.rollover_max)

    @property
    def is_free(self) -> bool:
        return self.price == 0

    @property
    def has_term(self) -> bool:
        return self.duration_days is not None


def _pack_price(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    # A free pack would hand out credits for nothing, as often as asked.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"price must be a positive integer (a pack is paid), got {value!r}")


def _pack_credits(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_AMOUNT:
        raise CatalogError(f"credits must be an integer from 1 to {MAX_AMOUNT}, got {value!r}")


def _pack_days(
    _instance: object, _attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PACK_DAYS:
        raise CatalogError(
            f"expires_after_days must be an integer from 1 to {MAX_PACK_DAYS} or none, "
            f"got {value!r}"
        )


def _pack_priority(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PACK_PRIORITY:
        raise CatalogError(
            f"priority must be an integer from 0 to {MAX_PACK_PRIORITY}, got {value!r}"
        )


@attrs.frozen
class Pack:
    """A top-up pack: ``credits`` bought once for ``price``, kept as a ``purchased`` lot
    until ``expires_after_days`` after the payment is confirmed (none: never), burning at
    ``priority`` (docs/credit-lots.md, "Packs"). Any user may buy any pack at any time."""

    id: str = attrs.field(validator=_slug)
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    price: int = attrs.field(
        validator=_pack_price, metadata=described("Minor units (paise for INR).", minimum=1)
    )
    credits: int = attrs.field(
        validator=_pack_credits, metadata=described(minimum=1, maximum=MAX_AMOUNT)
    )
    currency: str = attrs.field(default="INR", validator=_currency)
    expires_after_days: int | None = attrs.field(
        default=None,
        validator=_pack_days,
        metadata=described(
            "The lot's credits lapse this many days after the payment is confirmed; null: never.",
            minimum=1,
            maximum=MAX_PACK_DAYS,
        ),
    )
    priority: int = attrs.field(
        default=0,
        validator=_pack_priority,
        metadata=described("The lot's priority: lower burns first.", maximum=MAX_PACK_PRIORITY),
    )


@attrs.frozen
class PlanCatalog:
    """The plans on offer, ordered by rank, with exactly one default (free, no term) plan,
    which ranks lowest. Other free plans (a trial, with a term) may rank anywhere above it.

    Build one with :meth:`from_mapping`, :meth:`from_file` or :meth:`default`; each
    validates, so an invalid catalog cannot exist and fails at start-up.
    """

    plans: tuple[Plan, ...]
    #: The top-up packs on offer, in the file's order.
    packs: tuple[Pack, ...] = ()

    def __attrs_post_init__(self) -> None:
        pack_ids = [pack.id for pack in self.packs]
        if len(set(pack_ids)) != len(pack_ids):
            raise CatalogError(f"packs are listed twice: {sorted(pack_ids)}")
        if pack_ids and any(plan.id == "packs" for plan in self.plans):
            # A plan file holds both under one key: ``[packs]`` would be read as either.
            raise CatalogError("a catalog with packs cannot have a plan with the id 'packs'")
        seen: set[str] = set()
        for position, plan in enumerate(self.plans):
            if plan.id in seen:
                raise CatalogError(f"plan {plan.id!r}: duplicate id")
            if plan.rank != position:
                raise CatalogError(f"plan {plan.id!r}: rank {plan.rank} is not its position")
            seen.add(plan.id)
        defaults = [plan.id for plan in self.plans if plan.is_free and not plan.has_term]
        if len(defaults) != 1:
            raise CatalogError(
                "a catalog needs exactly one default plan (price 0, no duration_days); "
                f"found {len(defaults)}: {defaults}"
            )
        below = [plan.id for plan in self.plans if plan.rank < self.default_plan.rank]
        if below:
            # A plan below the default would let a user step down to it and "upgrade"
            # back to the default with its usage wiped, as often as it liked.
            raise CatalogError(
                f"plan {self.default_plan.id!r} is the default plan and must rank lowest "
                f"(come first), but {below} come before it"
            )

    @classmethod
    def default(cls) -> PlanCatalog:
        """The default catalog: basic, standard, premium."""
        return cls.from_mapping(REFERENCE_PLAN_CONFIGS)

    @classmethod
    def from_mapping(cls, configs: Mapping[str, Any]) -> PlanCatalog:
        """Load the ``PLAN_CONFIGS`` shape: ``{plan_id: {field: value}}``.

        Order is rank: the first plan is the lowest tier. ``{"plans": [...]}`` (a list of
        plan tables, the natural TOML shape) is accepted too. A top-level ``packs`` table
        of tables (``[packs.<id>]`` in TOML) holds the top-up packs, in either shape; a
        plan table has price and tokens, so a plan named ``packs`` still reads as one.
        """
        configs, packs = _split_packs(configs)
        if isinstance(configs, Mapping) and isinstance(configs.get("plans"), list):
            entries = [(_entry_id(entry, None), entry) for entry in configs["plans"]]
        elif isinstance(configs, Mapping):
            entries = list(configs.items())
        else:
            raise CatalogError(f"a catalog is a mapping of plan id to plan, got {configs!r}")
        if not entries:
            raise CatalogError("the catalog has no plans")
        return cls(
            tuple(_plan(key, entry, rank) for rank, (key, entry) in enumerate(entries)), packs
        )

    @classmethod
    def from_file(cls, path: str | Path) -> PlanCatalog:
        """Load a ``.toml`` or ``.json`` catalog file in either shape ``from_mapping`` takes."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise CatalogError(f"cannot read plan catalog {str(path)!r}: {error}") from error
        try:
            if path.suffix.lower() == ".toml":
                data: Any = tomllib.loads(text)
            elif path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                raise CatalogError(f"plan catalog {str(path)!r} must end in .toml or .json")
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
            raise CatalogError(f"plan catalog {str(path)!r} does not parse: {error}") from error
        return cls.from_mapping(data)

    @property
    def default_plan(self) -> Plan:
        """Where new accounts start and expired terms fall back to."""
        return next(plan for plan in self.plans if plan.is_free and not plan.has_term)

    def get(self, plan_id: str) -> Plan:
        """The plan with this id, or :class:`UnknownPlanError`."""
        for plan in self.plans:
            if plan.id == plan_id:
                return plan
        raise UnknownPlanError(plan_id)

    def get_pack(self, pack_id: str) -> Pack:
        """The pack with this id, or :class:`UnknownPackError`."""
        for pack in self.packs:
            if pack.id == pack_id:
                return pack
        raise UnknownPackError(pack_id)

    def has_pack(self, pack_id: str) -> bool:
        return any(pack.id == pack_id for pack in self.packs)

    def features_of(self, plan_id: str) -> tuple[str, ...]:
        """The features an account on ``plan_id`` has: its plan's, or the default plan's
        when that plan has left the catalog (the plan the account falls back to at its
        next reset)."""
        plan = self.get(plan_id) if plan_id in self else self.default_plan
        return plan.features

    def __contains__(self, plan_id: object) -> bool:
        return any(plan.id == plan_id for plan in self.plans)

    def __iter__(self) -> Iterator[Plan]:
        return iter(self.plans)

    def __len__(self) -> int:
        return len(self.plans)


def _entry_id(entry: object, key: str | None) -> str:
    if not isinstance(entry, Mapping):
        raise CatalogError(f"plan {key!r}: expected a table of fields, got {entry!r}")
    plan_id = entry.get("id", key)
    if not isinstance(plan_id, str):
        raise CatalogError(f"plan {key!r}: id must be a string, got {plan_id!r}")
    return plan_id


def _rollover(table: object) -> dict[str, Any]:
    """A plan's ``rollover = {max = N, periods = k}``, as the plan's two fields."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise CatalogError(f"rollover must be a table {{max, periods}}, got {table!r}")
    unknown = sorted(set(table) - _ROLLOVER_FIELDS)
    missing = sorted(_ROLLOVER_FIELDS - set(table))
    if unknown or missing:
        raise CatalogError(f"rollover takes max and periods (unknown {unknown}, missing {missing})")
    return {"rollover_max": table["max"], "rollover_periods": table["periods"]}


def _check_fields(
    what: str, entry: Mapping[str, Any], *, allowed: frozenset[str], required: set[str]
) -> None:
    """Refuse a catalog entry with a field it does not know or without one it needs."""
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise CatalogError(f"{what}: unknown field(s) {unknown}")
    missing = sorted(required - set(entry))
    if missing:
        raise CatalogError(f"{what}: missing field(s) {missing}")


def _plan(key: str, entry: object, rank: int) -> Plan:
    plan_id = _entry_id(entry, key)
    if not isinstance(entry, Mapping):  # pragma: no cover - _entry_id refused it already
        raise CatalogError(f"plan {key!r}: expected a table of fields")
    if plan_id != key:
        raise CatalogError(f"plan {key!r}: its id field says {plan_id!r}")
    _check_fields(f"plan {key!r}", entry, allowed=_FIELDS, required={"price", "tokens"})
    try:
        return Plan(
            id=plan_id,
            name=entry.get("name", plan_id.title()),
            price=entry["price"],
            tokens=entry["tokens"],
            duration_days=entry.get("duration_days"),
            rank=rank,
            currency=entry.get("currency", "INR"),
            features=entry.get("features", ()),
            **_rollover(entry.get("rollover")),
        )
    except (CatalogError, TypeError) as error:
        raise CatalogError(f"plan {key!r}: {error}") from error


def _split_packs(configs: Any) -> tuple[Any, tuple[Pack, ...]]:
    """The catalog without its ``packs`` table, and the packs. ``packs`` is the packs'
    table when every value in it is a table (a plan's price and tokens are numbers)."""
    if not isinstance(configs, Mapping):
        return configs, ()
    table = configs.get("packs")
    if not isinstance(table, Mapping) or not all(
        isinstance(value, Mapping) for value in table.values()
    ):
        return configs, ()
    rest = {key: value for key, value in configs.items() if key != "packs"}
    return rest, tuple(_pack(key, entry) for key, entry in table.items())


def _pack(key: str, entry: Mapping[str, Any]) -> Pack:
    pack_id = entry.get("id", key)
    if pack_id != key:
        raise CatalogError(f"pack {key!r}: its id field says {pack_id!r}")
    _check_fields(f"pack {key!r}", entry, allowed=_PACK_FIELDS, required={"price", "credits"})
    try:
        return Pack(
            id=key,
            name=entry.get("name", key.title()),
            price=entry["price"],
            credits=entry["credits"],
            currency=entry.get("currency", "INR"),
            expires_after_days=entry.get("expires_after_days"),
            priority=entry.get("priority", 0),
        )
    except (CatalogError, TypeError) as error:
        raise CatalogError(f"pack {key!r}: {error}") from error
