"""Fail if the core imports anything but the standard library and attrs.

import-linter can forbid a list of packages; this checks the positive rule (docs/architecture.md)
("the core imports the standard library and attrs, nothing else"), so a new dependency
cannot slip in under a name nobody thought to forbid.

Usage: python tools/check_core_imports.py [CORE_DIR]   (default: src/tokenplans)
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ALLOWED_ROOTS = frozenset(sys.stdlib_module_names) | {"attrs", "attr", "tokenplans", "__future__"}
_DYNAMIC_IMPORTERS = frozenset({"__import__", "import_module"})


def _imported_roots(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Yield (line, top-level module) for every absolute import, static or literal-dynamic."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module is not None:  # relative imports stay inside
                yield node.lineno, node.module.partition(".")[0]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if (
                name in _DYNAMIC_IMPORTERS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and not node.args[0].value.startswith(".")
            ):
                yield node.lineno, node.args[0].value.partition(".")[0]


def offences(core: Path) -> list[str]:
    """Return one ``file:line: message`` per import of a module outside ALLOWED_ROOTS."""
    found = []
    for path in sorted(core.rglob("*.py")):
        tree = ast.parse(path.read_bytes(), filename=str(path))
        found.extend(
            f"{path}:{line}: core imports {root!r} (allowed: standard library, attrs)"
            for line, root in _imported_roots(tree)
            if root not in ALLOWED_ROOTS
        )
    return found


def main(argv: list[str]) -> int:
    core = Path(argv[1]) if len(argv) > 1 else Path("src/tokenplans")
    if not core.is_dir():
        print(f"{core}: no such directory", file=sys.stderr)
        return 1
    found = offences(core)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
