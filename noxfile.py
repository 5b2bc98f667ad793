"""Developer and CI entry points.

Plain ``nox`` runs what a contributor needs before pushing: lint, typecheck, the tests on
the oldest and newest supported Pythons (3.11 and 3.13; one not on PATH is skipped, except
in CI), the tests on a 3-node MariaDB Galera cluster (booted on this machine; skipped
without Debian's ``mariadb-server`` and ``galera-4``, except in CI), a strict build of the
documentation site, and the built wheel installed with each extra; last, which Pythons the
tests ran on. Anything after ``--`` goes to the tool, e.g.
``nox -s tests-3.11 -- -k debit -x``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import nox

# "interpreters" goes last: it reports on the tests sessions before it.
nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "galera",
    "docs",
    "package",
    "interpreters",
]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
# Never fetch an interpreter: it must already be on PATH (.ci/run puts pyenv's there).
nox.options.download_python = "never"
# A missing interpreter fails a CI run (nox's default wherever CI is set, said here); a
# contributor's run skips it, and the interpreters session says so at the end.
nox.options.error_on_missing_interpreters = "CI" in os.environ

PYTHONS = ["3.11", "3.13"]
#: The Pythons a tests session of this run got to (a missing interpreter skips its session).
_TESTED_ON: set[str] = set()
#: Branch coverage of src/tokenplans the full suite must reach (it measured 96% when set).
CORE_COVERAGE_GATE = 95


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Style, formatting and the architecture's dependency rule."""
    session.install("ruff", "import-linter")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # The root packages are found on sys.path; no need to build and install the project.
    session.run("lint-imports", env={"PYTHONPATH": os.pathsep.join(["src", "adapters"])})
    # import-linter only forbids what it is told to; this allows only stdlib + attrs.
    session.run("python", "tools/check_core_imports.py")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the core and every adapter (config in pyproject.toml)."""
    session.install("-e", ".[all]", "mypy")
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite but the Galera tests (the ``galera`` session's); database tests run
    when their TOKENPLANS_TEST_*_URL is set.

    A full run (no arguments) also holds the core to its branch-coverage gate; a
    selection (``-- -k debit``) skips the gate, which only a full run can meet.
    """
    _TESTED_ON.add(str(session.python))
    session.install("-e", ".[test]")
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        "-m",
        "not galera",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "dev")},
    )
    if not session.posargs:
        session.run("coverage", "report", f"--fail-under={CORE_COVERAGE_GATE}")


@nox.session(python="3.11")
def galera(session: nox.Session) -> None:
    """The tests marked ``galera``: a 3-node cluster booted from Debian's packages
    (tests/galera/cluster.py), the storage contract suite on each node, three processes
    on three nodes, holds closed across nodes, a node killed mid-load, a server per
    node. Skipped where the packages are missing; a failure in CI (``CI=true``)."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "-m",
        "galera",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "dev")},
    )


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """``mkdocs build --strict`` of the documentation site (docs/, mkdocs.yml): a broken
    link or anchor, or a page left out of the nav, fails it. The site is built into a
    temporary folder and thrown away; ``mkdocs serve`` shows it while you edit."""
    session.install("-e", ".[docs]")
    with tempfile.TemporaryDirectory(prefix="tokenplans-site-") as site:
        session.run("mkdocs", "build", "--strict", "--site-dir", site)


#: Every extra a user may install (``""``: none), and whether the ``tokenplans`` command
#: works with it: it needs the server extra (SQLAlchemy, Starlette, PyJWT, python-dotenv,
#: uvicorn); without it, it says so in one line.
EXTRAS = {
    "": False,
    "sql": False,
    "postgres": False,
    "mysql": False,
    "http": False,
    "portal": False,
    "jwt": False,
    "razorpay": False,
    "stripe": False,
    "server": True,
    "fastapi": False,
    "prices": False,
    "metrics": False,
    "webhooks": False,
    "all": True,
}
#: What each extra makes importable, beyond the core and the package of adapters.
EXTRA_IMPORTS = {
    "": [],
    "sql": ["tokenplans_adapters.sql"],
    "postgres": ["tokenplans_adapters.sql", "psycopg"],
    "mysql": ["tokenplans_adapters.sql", "pymysql"],
    "http": ["tokenplans_adapters.http"],
    # .assets loads every template and the stylesheet: the wheel must ship them
    "portal": ["tokenplans_adapters.portal.assets"],
    "jwt": ["tokenplans_adapters.jwt_identity"],
    "razorpay": ["tokenplans_adapters.razorpay.gateway"],
    "stripe": ["tokenplans_adapters.stripe.gateway"],
    "server": [
        "tokenplans_adapters.main",
        "tokenplans_adapters.razorpay.gateway",
        "tokenplans_adapters.metrics",
        "tokenplans_adapters.portal.assets",
        "tokenplans_adapters.webhooks",
        "uvicorn",
    ],
    "fastapi": ["tokenplans_adapters.fastapi"],
    "prices": ["tokenplans_adapters.genai_prices"],
    "metrics": ["tokenplans_adapters.metrics"],
    "webhooks": ["tokenplans_adapters.webhooks", "httpx"],
    "all": [
        "tokenplans_adapters.main",
        "tokenplans_adapters.fastapi",
        "tokenplans_adapters.genai_prices",
        "psycopg",
        "pymysql",
    ],
}
LIBRARY_EXAMPLE = Path("docs/examples/library.py")


@nox.session(python="3.11")
def package(session: nox.Session) -> None:
    """Build the sdist and the wheel (from the sdist), then install the wheel in a fresh
    virtual environment per extra and use it there, away from this checkout: the
    packages import, each extra's adapters import, the README's library example runs,
    and ``tokenplans --help`` and ``tokenplans plans`` run (or say in one line that the
    command needs the server extra). Arguments go to ``uv pip install``, e.g.
    ``nox -s package -- --offline`` once its cache has every package."""
    session.install("uv")
    work = Path(session.create_tmp()).resolve()
    dist = work / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--quiet", "--out-dir", str(dist))
    (wheel,) = dist.glob("tokenplans-*.whl")
    (sdist,) = dist.glob("tokenplans-*.tar.gz")
    session.log(f"built {sdist.name} and {wheel.name}")
    python = str(Path(session.bin) / "python")
    example = LIBRARY_EXAMPLE.resolve()
    outside = work / "elsewhere"  # no checkout on sys.path, no .env
    outside.mkdir(exist_ok=True)
    for extra, has_command in EXTRAS.items():
        name = extra or "none"
        venv = work / f"extra-{name}"
        shutil.rmtree(venv, ignore_errors=True)
        session.run("uv", "venv", "--quiet", "--python", python, str(venv))
        target = f"{wheel}[{extra}]" if extra else str(wheel)
        session.run(
            "uv", "pip", "install", "--quiet", "--python", str(venv), target, *session.posargs
        )
        _check_installed(
            session, venv, extra, has_command=has_command, example=example, outside=outside
        )
        session.log(f"the wheel with extra {name!r}: ok")


def _check_installed(
    session: nox.Session, venv: Path, extra: str, *, has_command: bool, example: Path, outside: Path
) -> None:
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {"PYTHONPATH": "", "VIRTUAL_ENV": str(venv)}
    run = {"external": True, "env": env}
    imports = ["tokenplans", "tokenplans_adapters", *EXTRA_IMPORTS[extra]]
    check = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    module = importlib.import_module(name)\n"
        "    assert 'site-packages' in (module.__file__ or ''), (name, module.__file__)\n"
    )
    with session.chdir(outside):
        session.run(str(bin_dir / "python"), "-c", check, *imports, **run)
        session.run(str(bin_dir / "python"), str(example), **run)
        command = str(bin_dir / "tokenplans")
        if has_command:
            session.run(command, "--help", silent=True, **run)
            session.run(command, "plans", silent=True, **run)
        else:
            said = session.run(command, "--help", silent=True, success_codes=[2], **run)
            if "needs the server extra" not in (said or ""):
                session.error(f"tokenplans --help without the server extra said: {said!r}")


@nox.session(python=False)
def interpreters(session: nox.Session) -> None:
    """Which Pythons the tests ran on in this run, and why not on the others (nox skips a
    session whose interpreter is not on PATH, in one line amid the output; CI fails it
    instead). ``nox`` runs it last."""
    session.log(f"the tests ran on Python {', '.join(sorted(_TESTED_ON)) or 'none'}")
    absent = [python for python in PYTHONS if not _usable(f"python{python}")]
    if unselected := [p for p in PYTHONS if p not in _TESTED_ON and p not in absent]:
        session.log(f"not on Python {', '.join(unselected)}: not in this run")
    if missing := [python for python in absent if python not in _TESTED_ON]:
        names = ", ".join(f"python{python}" for python in missing)
        session.warn(
            f"the tests did NOT run on Python {', '.join(missing)}: no working {names} on PATH. "
            f"Install it (e.g. `uv python install {missing[-1]}`) and put it on PATH; with "
            "pyenv, whose shims run only its selected versions: `pyenv global 3.11 3.13`"
        )


def _usable(command: str) -> bool:
    """``command`` is on PATH and runs (a pyenv shim of an unselected version does not)."""
    found = shutil.which(command)
    if found is None:
        return False
    ran = subprocess.run([found, "-c", ""], capture_output=True, check=False)  # noqa: S603
    return ran.returncode == 0
