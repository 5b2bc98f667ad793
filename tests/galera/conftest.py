"""Tests on a 3-node MariaDB Galera cluster booted on this machine (``tests/galera/cluster.py``
and the ``galera_cluster`` fixture in ``tests/conftest.py``). They run with ``nox -s
galera`` (``-m galera``); the storage contract suite runs on every node too, through the
``galera-node*`` backends of ``tests/db_backends.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from db_backends import GALERA_NODES
from sqlalchemy import Engine

# The storage and end-to-end suites' helpers, shared rather than copied: they are plain
# modules found on sys.path (worker processes inherit it).
_TESTS = Path(__file__).resolve().parents[1]
for _helpers in (_TESTS / "storage", _TESTS / "e2e"):
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))


@pytest.fixture
def node_engines(engine_for: Callable[[str], Engine]) -> list[Engine]:
    """One engine (tokenplans' defaults, schema upgraded) per node, node1 first."""
    return [engine_for(node) for node in GALERA_NODES]
