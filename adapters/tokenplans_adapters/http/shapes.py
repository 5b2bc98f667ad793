"""The core's attrs values on the wire: their JSON, their JSON Schema and, for request
bodies, their strict parser, all read from the classes' fields.

A :class:`Shape` shows a value: each field by its name (or a wire name), in the class's
order (or one given for the first and last few), its schema chosen by its type and
completed by the field's description and bounds (``tokenplans._values.described``). A
:class:`Body` reads a request into a command of ``tokenplans._values.commands``: a JSON
object holding only the command's fields, each of its exact JSON type (``true`` is not
an integer, ``"5"`` is not 5), a field without a default required, ``null`` read as
absent. A field added to a value or a command therefore shows in every answer, body and
schema with no edit here. Times are ISO 8601 UTC with a ``Z`` suffix.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs
from starlette.requests import Request

from tokenplans import InvalidRequestError
from tokenplans._values.described import description_of

from .bodies import Field, check_object, read_json
from .openapi import TIME, nullable

T = TypeVar("T")

#: The JSON types a body field may have (an object for a nested value).
_JSON_KINDS = frozenset({int, bool, str, dict})


#: The types a JSON answer holds as they are (a ``bool`` is its own type, not ``int``).
_AS_IS = frozenset({int, str, bool, float})


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``: what JavaScript's ``Date`` and every JSON client read."""
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def json_value(value: object) -> object:
    """A field's value as JSON: a time in ISO 8601, an enum as its value."""
    if value is None or type(value) in _AS_IS:
        return value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        if value and all(attrs.has(type(item)) for item in value):
            return [_object_json(item) for item in value]
        return [json_value(item) for item in value]
    return value


#: Properties an item shows beside its fields (a lot's ``remaining``), after the field
#: named first.
_SHOWN_AFTER: Mapping[str, tuple[str, str]] = {"Lot": ("held", "remaining")}


def _object_json(item: object) -> dict[str, Any]:
    """A value inside a list (a lot, a draw) as a JSON object: its fields, and the
    property :data:`_SHOWN_AFTER` names for its class."""
    shown: dict[str, Any] = {}
    extra = _SHOWN_AFTER.get(type(item).__name__)
    for field in attrs.fields(type(item)):  # type: ignore[arg-type]
        shown[field.name] = json_value(getattr(item, field.name))
        if extra is not None and field.name == extra[0]:
            shown[extra[1]] = getattr(item, extra[1])
    return shown


def _items_schema(kind: type) -> dict[str, Any]:
    """The schema of a list of ``kind`` values (attrs classes), as :func:`_object_json`
    shows them."""
    properties: dict[str, Any] = {}
    hints = typing.get_type_hints(kind)
    extra = _SHOWN_AFTER.get(kind.__name__)
    for field in attrs.fields(kind):
        inner, null = _optional(hints[field.name])
        properties[field.name] = _property(field, inner, {}, null=null)
        if extra is not None and field.name == extra[0]:
            properties[extra[1]] = {"type": "integer", "minimum": 0}
    return {
        "type": "array",
        "items": {"type": "object", "properties": properties, "required": list(properties)},
    }


@attrs.frozen
class Nested:
    """A field whose type is a value of its own (an estimate, a model call's usage): its
    schema, and the parser of its JSON object (which names the field in its refusals)."""

    schema: Mapping[str, Any]
    parse: Callable[[object], object]


def _optional(hint: object) -> tuple[object, bool]:
    """The type a hint names, and whether ``None`` is allowed too."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return hint, False


def _schema_of(  # noqa: PLR0911 - one return per kind of value
    field: attrs.Attribute[Any], kind: object, nested: Mapping[type, Nested]
) -> dict[str, Any]:
    """The schema of one value of ``kind`` (``None`` aside), with the field's bounds."""
    said = description_of(field)
    if isinstance(kind, type) and kind in nested:
        return dict(nested[kind].schema)
    args = typing.get_args(kind)
    if (
        typing.get_origin(kind) is tuple
        and len(args) == 2  # noqa: PLR2004
        and args[1] is Ellipsis
        and attrs.has(args[0])
    ):  # a list of values of their own (a usage's lots): objects
        items = _items_schema(args[0])
        return items if said.description is None else {**items, "description": said.description}
    if kind is bool or kind is datetime:
        return {"type": "boolean"} if kind is bool else dict(TIME)
    if kind is int:
        schema: dict[str, Any] = {"type": "integer", "minimum": said.minimum or 0}
        if said.maximum is not None:
            schema["maximum"] = said.maximum
        return schema
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return {"type": "string", "enum": [member.value for member in kind]}
    if typing.get_origin(kind) is tuple:  # tuple[X, ...]: an array; bounds are the items'
        return {"type": "array", "items": _schema_of(field, typing.get_args(kind)[0], nested)}
    if kind is str:
        schema = {"type": "string"}
        if said.min_length is not None:
            schema["minLength"] = said.min_length
        if said.max_length is not None:
            schema["maxLength"] = said.max_length
        return schema
    raise TypeError(f"{field.name}: no JSON shape for {kind!r}")  # fails at import


def _property(
    field: attrs.Attribute[Any], kind: object, nested: Mapping[type, Nested], *, null: bool
) -> dict[str, Any]:
    """One field's schema: its type's, ``null`` allowed too when ``null``, then its
    description."""
    schema = _schema_of(field, kind, nested)
    if null:
        schema = nullable(schema)
    description = description_of(field).description
    if description is not None:
        schema["description"] = description
    return schema


class Shape(Generic[T]):
    """How values of an attrs class show as JSON: every field but those ``omit`` names,
    ``lead`` first and ``last`` last (the rest in the class's order), each under its
    ``rename`` (the field's own name by default)."""

    def __init__(
        self,
        cls: type[T],
        *,
        lead: Iterable[str] = (),
        last: Iterable[str] = (),
        omit: Iterable[str] = (),
        rename: Mapping[str, str] | None = None,
    ) -> None:
        fields = {field.name: field for field in attrs.fields(cls)}  # type: ignore[arg-type]
        first, final, left_out = tuple(lead), tuple(last), frozenset(omit)
        middle = [name for name in fields if name not in {*first, *final, *left_out}]
        self.cls = cls
        self._hints = typing.get_type_hints(cls)
        self._fields = tuple(fields[name] for name in (*first, *middle, *final))
        self._wire: dict[str, str] = {
            field.name: (rename or {}).get(field.name, field.name) for field in self._fields
        }
        self._pairs = [(wire, name) for name, wire in self._wire.items()]

    def _pairs_of(self, only: Iterable[str]) -> list[tuple[str, str]]:
        """(wire name, field name) of the fields ``only`` names, in its order."""
        return [(self._wire[field.name], field.name) for field in self._chosen(only)]

    @property
    def names(self) -> tuple[str, ...]:
        """The wire names, in the order the JSON shows them."""
        return tuple(self._wire.values())

    def _chosen(self, only: Iterable[str] | None) -> list[attrs.Attribute[Any]]:
        if only is None:
            return list(self._fields)
        by_wire = {self._wire[field.name]: field for field in self._fields}
        return [by_wire[name] for name in only]

    def _property(self, field: attrs.Attribute[Any]) -> dict[str, Any]:
        kind, optional = _optional(self._hints[field.name])
        return _property(field, kind, {}, null=optional)

    def json(self, value: T, only: Iterable[str] | None = None) -> dict[str, Any]:
        """``value``'s fields as JSON (those ``only`` names, in its order, if given)."""
        pairs = self._pairs if only is None else self._pairs_of(only)
        return {wire: json_value(getattr(value, name)) for wire, name in pairs}

    def properties(self, only: Iterable[str] | None = None) -> dict[str, Any]:
        """The schema of each field, by wire name (those ``only`` names, if given)."""
        return {self._wire[field.name]: self._property(field) for field in self._chosen(only)}


class Body(Generic[T]):
    """A request body read into the command ``cls``. ``one_of`` names the fields of which
    exactly one must be sent (``amount`` and the call it is priced from); ``nested``
    reads the fields whose type is a value of its own."""

    def __init__(
        self,
        cls: type[T],
        *,
        one_of: tuple[str, ...] | None = None,
        nested: Mapping[type, Nested] | None = None,
    ) -> None:
        self.cls = cls
        self.one_of = one_of
        self._nested = dict(nested or {})
        self._hints = typing.get_type_hints(cls)
        self._fields: tuple[attrs.Attribute[Any], ...] = tuple(attrs.fields(cls))  # type: ignore[arg-type]
        #: Each field's JSON type, and whether it must be sent (it has no default); a
        #: type no body can carry fails here, at import.
        self._checks = {
            field.name: Field(self._kind(field), required=field.default is attrs.NOTHING)
            for field in self._fields
        }
        #: The parser of each field whose type is a nested value.
        self._parsers = {
            field.name: self._nested[kind].parse
            for field in self._fields
            for kind in [_optional(self._hints[field.name])[0]]
            if isinstance(kind, type) and kind in self._nested
        }

    def _kind(self, field: attrs.Attribute[Any]) -> type:
        kind, _ = _optional(self._hints[field.name])
        if isinstance(kind, type) and kind in self._nested:
            return dict
        if isinstance(kind, type) and kind in _JSON_KINDS:
            return kind
        raise TypeError(f"{field.name}: no JSON body type for {kind!r}")  # fails at import

    def _property(self, field: attrs.Attribute[Any]) -> dict[str, Any]:
        """A body field's schema: ``null`` allowed on every field that may be left out."""
        kind, _ = _optional(self._hints[field.name])
        return _property(field, kind, self._nested, null=field.default is not attrs.NOTHING)

    def property(self, name: str) -> dict[str, Any]:
        """One field's schema, for an answer that repeats it."""
        return self._property(next(field for field in self._fields if field.name == name))

    def parse(self, data: object) -> T:
        """``data`` (parsed JSON) as the command, or 422 naming the field to fix."""
        given = check_object(data, self._checks)
        if self.one_of is not None and sum(name in given for name in self.one_of) != 1:
            *others, last = self.one_of
            raise InvalidRequestError(f"send {', '.join(others)} or {last}: exactly one of them")
        for name, parse in self._parsers.items():
            if name in given:
                given[name] = parse(given[name])
        return self.cls(**given)

    async def read(self, request: Request) -> T:
        """The request's body as the command: 415 unless JSON, else 422 unless valid."""
        return self.parse(await read_json(request))

    def schema(
        self,
        *,
        description: str | None = None,
        examples: list[Any] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The body's JSON Schema: a closed object, optional fields nullable."""
        required = [field.name for field in self._fields if field.default is attrs.NOTHING]
        schema: dict[str, Any] = {"type": "object"}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        if description is not None:
            schema["description"] = description
        if examples is not None:
            schema["examples"] = examples
        chosen = overrides or {}
        schema["properties"] = {
            field.name: dict(chosen.get(field.name) or self._property(field))
            for field in self._fields
        }
        return schema
