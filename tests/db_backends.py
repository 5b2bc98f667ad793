"""Which databases the suite runs against, shared by every suite that uses SQL stores.

SQLite always (a file per session); MariaDB/MySQL and PostgreSQL from
``TOKENPLANS_TEST_MYSQL_URL`` / ``TOKENPLANS_TEST_POSTGRES_URL``: unset means skip (a
newcomer's laptop has SQLite only), set but unreachable means the tests fail, never skip.
The ``engine_for`` fixture in ``tests/conftest.py`` builds one engine per backend.

The ``galera-node*`` backends are the nodes of a 3-node MariaDB Galera cluster that the
``galera_cluster`` fixture boots on this machine (``tests/galera/cluster.py``); they are
marked ``galera`` and ``slow``, and are not part of ``SQL_BACKENDS``: suites opt in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

URL_VARIABLES = {
    "postgres": "TOKENPLANS_TEST_POSTGRES_URL",
    "mysql": "TOKENPLANS_TEST_MYSQL_URL",
}
SQL_BACKENDS = ["sqlite", "mysql", "postgres"]
GALERA_NODES = ["galera-node1", "galera-node2", "galera-node3"]


def backend_url(backend: str, tmp_dir: Path) -> str:
    """The URL to test ``backend`` at, or skip the test when its variable is unset."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / 'tokenplans.db'}"
    url = os.environ.get(URL_VARIABLES[backend], "")
    if not url:
        pytest.skip(f"{URL_VARIABLES[backend]} is not set")
    return url


def backend_param(backend: str) -> Any:
    """``backend`` as a pytest parameter, marked ``mysql``/``postgres`` for a server,
    ``galera`` and ``slow`` for a Galera node."""
    marks = [getattr(pytest.mark, backend)] if backend in URL_VARIABLES else []
    if backend in GALERA_NODES:
        marks = [pytest.mark.galera, pytest.mark.slow]
    return pytest.param(backend, marks=marks)
