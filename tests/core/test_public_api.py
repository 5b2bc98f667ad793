"""The public namespaces: every error in the import-free ``tokenplans.errors``, the limits
in ``tokenplans.limits``, implementers' names in ``tokenplans.ports`` re-exported (never
defined twice), and optional capabilities found by type, not by name."""

from __future__ import annotations

import ast
import inspect
from contextlib import nullcontext
from pathlib import Path

import tokenplans
import tokenplans.errors
import tokenplans.limits
import tokenplans.ports
from tokenplans import PlanCatalog, Principal, TokenService
from tokenplans.ports import BlockingHint, KnowsCredentials, RowLockingStore, SupportsClose
from tokenplans.testing import InMemoryStore, SettableClock


def _errors_in(module: object) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, tokenplans.errors.TokenplansError)
    }


def test_the_errors_module_imports_nothing_from_tokenplans_even_for_type_checking() -> None:
    tree = ast.parse(Path(tokenplans.errors.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }

    assert not {name for name in imported if name.split(".")[0] == "tokenplans"}
    assert all(node.level == 0 for node in ast.walk(tree) if isinstance(node, ast.ImportFrom))


def test_every_error_is_defined_in_tokenplans_errors_and_listed_there() -> None:
    ours = {
        cls
        for cls in _subclasses(tokenplans.errors.TokenplansError)
        if cls.__module__.split(".")[0] == "tokenplans"
    }

    assert {cls.__module__ for cls in ours} == {"tokenplans.errors"}
    assert {cls.__name__ for cls in ours} | {"TokenplansError"} <= set(tokenplans.errors.__all__)


def test_tokenplans_and_ports_re_export_the_very_error_classes() -> None:
    for module in (tokenplans, tokenplans.ports):
        for name in _errors_in(module):
            assert getattr(module, name) is getattr(tokenplans.errors, name), name
    assert "WriteConflictError" not in tokenplans.__all__  # a store's word, not a caller's
    assert _errors_in(tokenplans) == set(tokenplans.__all__) & _errors_in(tokenplans.errors)


def test_the_limits_are_one_set_of_objects_wherever_they_are_imported_from() -> None:
    for name in tokenplans.limits.__all__:
        for module in (tokenplans, tokenplans.ports):
            if hasattr(module, name):
                assert getattr(module, name) is getattr(tokenplans.limits, name), name
    assert tokenplans.limits.check_subject("alice") == "alice"


def test_ports_defines_nothing_and_repeats_only_the_objects_tokenplans_publishes() -> None:
    for name in tokenplans.ports.__all__:
        value = getattr(tokenplans.ports, name)
        assert getattr(value, "__module__", "tokenplans._") != "tokenplans.ports", name
        if name in tokenplans.__all__:
            assert getattr(tokenplans, name) is value, name


def test_the_services_find_a_row_lock_by_its_protocol() -> None:
    class Locking(InMemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.locked_subjects: list[str] = []

        def locked(self, subject: str) -> nullcontext[None]:
            self.locked_subjects.append(subject)
            return nullcontext()

    store = Locking()
    service = TokenService(store, PlanCatalog.default(), SettableClock())
    service.consume(Principal("alice"), 5)

    assert isinstance(store, RowLockingStore)
    assert not isinstance(InMemoryStore(), RowLockingStore)
    assert store.locked_subjects == ["alice"]


def test_an_object_has_a_capability_only_when_it_has_the_member() -> None:
    class Quiet:
        may_block = False

        def known(self, credential: str) -> Principal | None:
            return None

        def close(self) -> None:
            pass

    assert isinstance(Quiet(), BlockingHint)
    assert isinstance(Quiet(), KnowsCredentials)
    assert isinstance(Quiet(), SupportsClose)
    assert not isinstance(object(), BlockingHint | KnowsCredentials | SupportsClose)


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found
