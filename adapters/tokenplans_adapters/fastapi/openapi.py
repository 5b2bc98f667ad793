"""tokenplans' OpenAPI document merged into a host's, so the host's ``/docs`` shows it.

Paths get the mount prefix. Components (schemas and the bearer security scheme) always
get a prefix of their own (``Tokenplans``: ``TokenplansUsage``, ``TokenplansBearer``),
whatever the host defines: the names a client generator sees do not change when the host
adds a model, and two ``Error`` schemas never meet. Each ``operationId`` gets the same
prefix, in camelCase (``getUsage`` becomes ``tokenplansGetUsage``), so a client generated
from the host's document has one method per operation whatever the host names its own.
A prefixed name the host already uses for something else (a component or an
``operationId``), or a path the host already serves, is a ``ValueError`` naming it:
silently dropping or duplicating one of the two would document a route wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCHEMA_REF = "#/components/schemas/"


def component_name(component_prefix: str, name: str) -> str:
    """Our component ``name`` as it appears in the host's document."""
    return component_prefix + name[:1].upper() + name[1:]


def operation_id(component_prefix: str, name: str) -> str:
    """Our ``operationId`` ``name`` as it appears in the host's document (camelCase)."""
    return component_prefix[:1].lower() + component_name(component_prefix, name)[1:]


def merge_document(
    host: dict[str, Any], ours: Mapping[str, Any], *, prefix: str, component_prefix: str
) -> None:
    """Add ``ours`` (a tokenplans document) to ``host`` (a host app's, changed in place):
    every path under ``prefix``, every component renamed by ``component_prefix``."""
    components = ours["components"]
    schemas = {name: component_name(component_prefix, name) for name in components["schemas"]}
    schemes = {
        name: component_name(component_prefix, name) for name in components["securitySchemes"]
    }
    host_components = host.setdefault("components", {})
    for kind, names in (("schemas", schemas), ("securitySchemes", schemes)):
        target = host_components.setdefault(kind, {})
        for name, renamed in names.items():
            _add(target, renamed, _renamed(components[kind][name], schemas), kind)
    host_paths = host.setdefault("paths", {})
    taken = _operation_ids(host_paths)
    for path, item in ours["paths"].items():
        full = prefix + path
        if full in host_paths:
            raise ValueError(f"the host already documents {full!r}; mount tokenplans elsewhere")
        merged = {
            method: _secured_by(_renamed(operation, schemas), schemes)
            for method, operation in item.items()
        }
        for operation in merged.values():
            if "operationId" in operation:
                renamed = operation_id(component_prefix, operation["operationId"])
                if renamed in taken:
                    raise ValueError(
                        f"the host's OpenAPI document already has an operationId {renamed!r}; "
                        "pass mount_tokenplans another component_prefix"
                    )
                taken.add(renamed)
                operation["operationId"] = renamed
        host_paths[full] = merged


def _operation_ids(paths: Mapping[str, Any]) -> set[str]:
    return {
        operation["operationId"]
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, Mapping) and "operationId" in operation
    }


def _add(target: dict[str, Any], name: str, value: Any, kind: str) -> None:
    if target.setdefault(name, value) != value:
        raise ValueError(
            f"the host's OpenAPI document already has another {kind} entry {name!r}; "
            "pass mount_tokenplans another component_prefix"
        )


def _renamed(value: Any, schemas: Mapping[str, str]) -> Any:
    """A deep copy of ``value`` with every ``$ref`` to our schemas renamed."""
    if isinstance(value, Mapping):
        return {
            key: (
                SCHEMA_REF + schemas[item.removeprefix(SCHEMA_REF)]
                if key == "$ref" and isinstance(item, str) and item.startswith(SCHEMA_REF)
                else _renamed(item, schemas)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_renamed(item, schemas) for item in value]
    return value


def _secured_by(operation: dict[str, Any], schemes: Mapping[str, str]) -> dict[str, Any]:
    """``operation`` with its security requirements naming the renamed schemes."""
    if "security" in operation:
        operation["security"] = [
            {schemes[name]: scopes for name, scopes in requirement.items()}
            for requirement in operation["security"]
        ]
    return operation
