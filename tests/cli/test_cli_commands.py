"""The ``tokenplans`` command: token, plans, db upgrade, and serve's refusals.

Most tests call :func:`tokenplans_adapters.main.cli.main` in-process (fast); a few run the installed
console script to check what a user sees: exit code 2, one line, no traceback.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import tomllib
import uuid
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from tokenplans import ADMIN_SCOPE
from tokenplans_adapters.jwt_identity import JwtIdentity
from tokenplans_adapters.main import engines
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.sql.migrate import head_revisions

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "a-secret-that-is-long-enough-for-hs256-0123456789"


def run_console(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed ``tokenplans`` script, as a user would run it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENPLANS_", "JWT_"))}
    return subprocess.run(  # noqa: S603 - our own console script
        [str(Path(sys.executable).with_name("tokenplans")), *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- token ------------------------------------------------------------------------------


def test_token_prints_a_token_the_server_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", GOOD_SECRET)

    assert main(["token", "alice"]) == 0

    principal = JwtIdentity(secret=GOOD_SECRET).authenticate(capsys.readouterr().out.strip())
    assert principal.subject == "alice"
    assert not principal.is_admin


def test_token_admin_adds_the_admin_scope(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JWT_SECRET", GOOD_SECRET)

    assert main(["token", "ops", "--admin", "--ttl", "60"]) == 0

    principal = JwtIdentity(secret=GOOD_SECRET).authenticate(capsys.readouterr().out.strip())
    assert principal.scopes == {ADMIN_SCOPE}


def test_token_without_a_secret_explains_how_to_set_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "alice"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("tokenplans: error: no JWT secret is configured")
    assert "TOKENPLANS_JWT_SECRET" in err


def test_token_refuses_a_non_positive_ttl(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["token", "alice", "--ttl", "0"])

    assert exited.value.code == 2


# -- plans ------------------------------------------------------------------------------


def test_plans_prints_the_reference_catalog_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plans"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "name", "price", "currency", "tokens", "term", "features"]
    assert lines[1].split() == ["basic", "Basic", "0", "INR", "1000", "-", "-", "(default)"]
    assert lines[2].split() == ["standard", "Standard", "2900", "INR", "10000", "30", "days", "-"]
    assert lines[3].split() == ["premium", "Premium", "9900", "INR", "50000", "30", "days", "-"]


def test_plans_reads_the_configured_catalog_file_and_prints_json(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "plans.toml").write_text(
        "[free]\nprice = 0\ntokens = 100\n\n[pro]\nprice = 500\ntokens = 5000\n"
        'duration_days = 7\ncurrency = "USD"\n'
    )
    monkeypatch.setenv("TOKENPLANS_PLANS_FILE", "plans.toml")

    assert main(["plans", "--json"]) == 0

    plans = json.loads(capsys.readouterr().out)
    assert plans == {
        "free": {
            "name": "Free",
            "price": 0,
            "currency": "INR",
            "tokens": 100,
            "duration_days": None,
        },
        "pro": {"name": "Pro", "price": 500, "currency": "USD", "tokens": 5000, "duration_days": 7},
    }


def test_an_invalid_catalog_file_is_one_line_and_exit_code_2(workdir: Path) -> None:
    (workdir / "plans.json").write_text(json.dumps({"basic": {"price": -5, "tokens": 10}}))

    done = run_console("plans", cwd=workdir, env={"TOKENPLANS_PLANS_FILE": "plans.json"})

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("tokenplans: error: plan 'basic':")
    assert "Traceback" not in done.stderr


# -- db upgrade -------------------------------------------------------------------------


def test_db_upgrade_creates_the_tables_in_the_default_sqlite_file_and_says_so(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (head,) = head_revisions()
    assert main(["db", "upgrade"]) == 0
    created = capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0  # and again: a no-op

    assert created.startswith(
        f"created the schema at revision {head} in sqlite:///./tokenplans.sqlite3: "
        "tables tokenplans_accounts, "
    )
    assert "tokenplans_alembic_version" in created
    assert capsys.readouterr().out == (
        f"schema is up to date (revision {head}): sqlite:///./tokenplans.sqlite3\n"
    )
    with closing(sqlite3.connect(workdir / "tokenplans.sqlite3")) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"tokenplans_accounts", "tokenplans_alembic_version"} <= tables


@pytest.mark.postgres
def test_db_upgrade_works_on_postgresql_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = os.environ.get("TOKENPLANS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("TOKENPLANS_TEST_POSTGRES_URL is not set")
    monkeypatch.setenv("TOKENPLANS_DATABASE_URL", url)

    assert main(["db", "upgrade"]) == 0

    assert "postgresql" in capsys.readouterr().out
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM tokenplans_accounts")).scalar() >= 0
    finally:
        engine.dispose()


def test_db_upgrade_on_an_unreachable_database_fails_in_one_line(workdir: Path) -> None:
    url = f"postgresql+psycopg://nobody@127.0.0.1:1/{uuid.uuid4().hex}"

    done = run_console("db", "upgrade", cwd=workdir, env={"TOKENPLANS_DATABASE_URL": url})

    assert done.returncode == 1
    assert done.stderr.startswith("tokenplans: error: database unavailable:")
    assert "Traceback" not in done.stderr


# -- serve ------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "your-secret-key-change-this"])
def test_serve_refuses_a_missing_or_short_secret_and_says_how_to_set_one(
    secret: str | None, workdir: Path
) -> None:
    done = run_console("serve", cwd=workdir, env={} if secret is None else {"JWT_SECRET": secret})

    assert done.returncode == 2
    assert done.stderr.startswith("tokenplans: error: ")
    assert "refusing to serve" in done.stderr
    assert "export TOKENPLANS_JWT_SECRET=" in done.stderr
    assert "tokenplans serve --dev" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (workdir / "tokenplans.sqlite3").exists()  # refused before touching anything


def test_serve_refuses_an_unusable_jwt_configuration_before_starting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", GOOD_SECRET)
    monkeypatch.setenv("TOKENPLANS_JWT_ALGORITHMS", "HS256,RS256")

    assert main(["serve"]) == 2

    assert capsys.readouterr().err.startswith("tokenplans: error: JWT settings:")


def test_serve_refuses_a_busy_port_before_printing_dev_tokens(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]

        assert main(["serve", "--dev", "--port", str(port)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"tokenplans: error: cannot listen on 127.0.0.1:{port}")


# -- mistakes ---------------------------------------------------------------------------


def _exit_code(argv: list[str]) -> int:
    """What ``main`` ends with, whether argparse exits or a handler returns."""
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code if isinstance(exited.code, int) else 1


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["serve", "--port", "99999"], "give a number from 1 to 65535"),
        (["serve", "--port", "-1"], "give a number from 1 to 65535"),
        (["serve", "--port", "http"], "is not an integer"),
        (["serve", "--port", "9" * 5000], "is not an integer"),
        (["serve", "--workers", "0"], "of at least 1"),
        (["serve", "--host", "not.a.real.host.invalid"], "give one of its addresses"),
        (["serve", "--host", "192.0.2.1"], "is not an address of this machine"),
        (["serve", "--bogus"], "see `tokenplans --help`"),
        (["token", "alice", "--ttl", "9" * 30], "give a number from 1 to"),
        (["token", ""], "subject must be 1 to 255 characters"),
        (["token", "\udcff"], "is not valid UTF-8 text"),
        (["plans", "--format", "yaml"], "invalid choice: 'yaml'"),
        (["db"], "required: ACTION"),
        ([], "required: COMMAND"),
    ],
)
def test_every_command_line_mistake_is_one_line_saying_what_to_do_and_exit_code_2(
    argv: list[str], hint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", GOOD_SECRET)

    assert _exit_code(argv) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("tokenplans")
    assert err.count("\n") == 1, err
    assert hint in err


def test_a_token_for_an_empty_subject_is_refused_from_the_console(workdir: Path) -> None:
    done = run_console("token", "", cwd=workdir, env={"TOKENPLANS_JWT_SECRET": GOOD_SECRET})

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("tokenplans: error: SUBJECT '':")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("url", "module", "advice"),
    [
        (
            "postgresql+psycopg://app@127.0.0.1:1/app",
            "psycopg",
            "pip install 'psycopg[binary]' (tokenplans' postgres extra has it) and use a "
            "postgresql+psycopg:// URL",
        ),
        (
            "mysql+pymysql://app@127.0.0.1:1/app",
            "pymysql",
            "pip install 'pymysql' (tokenplans' mysql extra has it) and use a mysql+pymysql:// URL",
        ),
    ],
)
def test_a_missing_database_driver_names_the_package_to_install_and_the_url_scheme(
    url: str,
    module: str,
    advice: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    monkeypatch.setenv("TOKENPLANS_DATABASE_URL", url)

    assert main(["db", "upgrade"]) == 2

    err = capsys.readouterr().err
    assert err == f"tokenplans: error: database URL {url}: its driver {module!r} is not " + (
        f"installed: {advice}\n"
    )
    assert "tokenplans[" not in err  # tokenplans is not on the package index


@pytest.mark.parametrize(
    ("url", "ours"),
    [
        ("mysql://app:pw@127.0.0.1:1/app", "mysql+pymysql://app:***@127.0.0.1:1/app"),
        (
            "postgresql+psycopg2://app:pw@127.0.0.1:1/app",
            "postgresql+psycopg://app:***@127.0.0.1:1/app",
        ),
    ],
)
def test_a_url_for_another_driver_than_the_installed_one_says_which_url_to_use(
    url: str, ours: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for other in ("MySQLdb", "psycopg2"):  # what mysql:// and postgresql+psycopg2:// load
        monkeypatch.setitem(sys.modules, other, None)
    monkeypatch.setenv("TOKENPLANS_DATABASE_URL", url)

    assert main(["db", "upgrade"]) == 2

    err = capsys.readouterr().err
    assert f"is installed: use a {ours.partition(':')[0]}:// URL, i.e. {ours}\n" in err
    assert "pip install" not in err
    assert "pw" not in err


def test_the_driver_hints_name_the_packages_tokenplans_extras_install() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    for driver in engines.DRIVERS.values():
        assert any(
            requirement.startswith(driver.requirement) for requirement in extras[driver.extra]
        ), driver


def test_a_sqlite_file_in_a_missing_folder_names_the_folder(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKENPLANS_DATABASE_URL", "sqlite:///./data/tokenplans.sqlite3")

    assert main(["db", "upgrade"]) == 2

    assert capsys.readouterr().err == (
        "tokenplans: error: database URL sqlite:///./data/tokenplans.sqlite3: the folder "
        f"{workdir / 'data'} does not exist; create it, or point the URL at an existing "
        "folder\n"
    )
    (workdir / "data").mkdir()
    assert main(["db", "upgrade"]) == 0
    assert (workdir / "data" / "tokenplans.sqlite3").is_file()


def test_the_command_without_the_server_extra_says_what_to_install(workdir: Path) -> None:
    # A bare install has no SQLAlchemy; `nox -s package` checks the real thing.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['sqlalchemy'] = None\n"
            "from tokenplans_adapters.console import main; sys.exit(main())",
            "--help",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "tokenplans: error: the tokenplans command needs the server extra ('sqlalchemy' is "
        "not installed): install tokenplans with it, e.g. pip install 'PATH[server]' where "
        "PATH is a tokenplans wheel or checkout\n"
    )


def test_the_console_script_runs_the_command(workdir: Path) -> None:
    done = run_console("plans", "--json", cwd=workdir, env={})

    assert done.returncode == 0, done.stderr
    assert "basic" in json.loads(done.stdout)


def test_serve_without_uvicorn_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)

    assert main(["serve", "--dev"]) == 2

    assert capsys.readouterr().err.startswith(
        "tokenplans: error: serve needs uvicorn (import of uvicorn halted; None in "
        "sys.modules): install tokenplans with its server extra, or pip install uvicorn"
    )


def test_an_unknown_database_scheme_lists_the_url_forms(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKENPLANS_DATABASE_URL", "postgres://app@db/app")

    assert main(["db", "upgrade"]) == 2

    err = capsys.readouterr().err
    assert "unknown scheme 'postgres'" in err
    assert "postgresql+psycopg://user:pw@host/db" in err
