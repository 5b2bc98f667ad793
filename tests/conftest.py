"""Shared test configuration.

Hypothesis profiles live here (STYLE.md): ``dev`` is quick for the edit-test loop, ``ci``
digs deeper. Pick one with the HYPOTHESIS_PROFILE environment variable (default ``dev``);
``nox`` passes it through and ``.ci/run`` sets ``ci``.

``engine_for`` gives every suite that needs SQL stores the same engines (see
``tests/db_backends.py`` for which databases run and when they skip); ``galera_cluster``
boots the 3-node MariaDB Galera cluster that the ``galera-node*`` backends live on.

A run that skipped database tests for want of their URLs ends with one line saying how
many, and the command that runs them against local servers.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from db_backends import GALERA_NODES, URL_VARIABLES, backend_url
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter
    from galera.cluster import GaleraCluster
    from sqlalchemy import Engine

#: Where the database tests find local servers (the databases as .ci/run creates them).
LOCAL_TEST_URLS = {
    "TOKENPLANS_TEST_POSTGRES_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/tokenplans_test",
    "TOKENPLANS_TEST_MYSQL_URL": "mysql+pymysql://root@127.0.0.1:3306/tokenplans_test?charset=utf8mb4",
}

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def galera_cluster() -> Iterator[GaleraCluster]:
    """A 3-node MariaDB Galera cluster on this machine, for the whole session, killed and
    removed at the end. Skipped where Debian's packages are missing - but in CI
    (``CI=true``) that is a failure, as is a cluster that does not boot anywhere."""
    from galera.cluster import missing_packages, running_cluster  # noqa: PLC0415

    missing = missing_packages()
    if missing:
        message = f"cannot boot a Galera cluster: {missing}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def engine_for(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], Engine]]:
    """One engine per SQL backend for the whole session, built on first use with its
    schema upgraded (idempotently: databases are shared with concurrent runs, and nothing
    is ever dropped), disposed at the end. A Galera node boots the cluster first."""
    from tokenplans_adapters.sql import make_engine, upgrade_schema  # noqa: PLC0415 - SQL suites only

    engines: dict[str, Engine] = {}

    def get(backend: str) -> Engine:
        if backend not in engines:
            if backend in GALERA_NODES:
                cluster = request.getfixturevalue("galera_cluster")
                url = cluster.nodes[GALERA_NODES.index(backend)].url
            else:
                url = backend_url(backend, tmp_path_factory.mktemp(f"db-{backend}"))
            engine = make_engine(url)
            upgrade_schema(engine)
            engines[backend] = engine
        return engines[backend]

    yield get
    for engine in engines.values():
        engine.dispose()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(
    terminalreporter: TerminalReporter, exitstatus: int, config: pytest.Config
) -> Iterator[None]:
    """One line at the end when database tests were skipped because their URL is unset:
    how many, and the command that runs this same selection against local servers.
    (A wrapper around the terminal reporter's own summary, so the line comes after the
    ``-ra`` list of skips, just above the final count.)"""
    yield
    skipped: set[str] = set()
    unset: list[str] = []
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        for variable in URL_VARIABLES.values():
            if f"{variable} is not set" in reason:
                skipped.add(report.nodeid)
                if variable not in unset:
                    unset.append(variable)
    if not skipped:
        return
    variables = " ".join(
        f"{variable}={shlex.quote(LOCAL_TEST_URLS[variable])}" for variable in sorted(unset)
    )
    command = shlex.join(["pytest", *config.invocation_params.args])
    terminalreporter.write_line(
        f"{len(skipped)} database tests skipped ({', '.join(sorted(unset))} not set); "
        f"run them against local servers with: {variables} {command}",
        yellow=True,
    )


@pytest.fixture(autouse=True)
def _storage_threads_restored() -> Iterator[None]:
    """Each test leaves the process's pool of storage threads as it found it: the server's
    ASGI factory sizes that pool (``tokenplans_adapters.http.offload.use_threads``), and a
    test that calls it must not shrink the pool under the tests that hold 20 calls in
    flight."""
    from tokenplans_adapters.http import offload  # noqa: PLC0415 - adapters, not every suite's

    threads = offload.threads()
    yield
    offload.use_threads(threads)
