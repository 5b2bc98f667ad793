"""Settings: where each value comes from, and what wins when several sources disagree."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from tokenplans_adapters.http import create_app
from tokenplans_adapters.main import ConfigError, Settings, config
from tokenplans_adapters.main.config import DEFAULT_CORS_ORIGINS, DEFAULT_DATABASE_URL
from tokenplans_adapters.razorpay import RazorpayGateway


def test_with_nothing_configured_the_defaults_are_sqlite_hs256_and_the_reference_origins() -> None:
    settings = Settings.from_env({})

    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///./tokenplans.sqlite3"
    assert settings.jwt_secret is None
    assert settings.jwt_algorithms == ("HS256",)
    assert settings.cors_origins == DEFAULT_CORS_ORIGINS
    assert settings.plans_file is None
    assert settings.jwt_require_exp is True


def test_the_reference_variable_names_work() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql+psycopg://db/app",
            "JWT_SECRET": "reference-secret",
            "JWT_ALGORITHM": "HS512",
            "API_BASE_URL": "https://api.example",
        }
    )

    assert settings.database_url == "postgresql+psycopg://db/app"
    assert settings.jwt_secret == "reference-secret"
    assert settings.jwt_algorithms == ("HS512",)
    assert settings.base_url == "https://api.example"


def test_tokenplans_names_win_over_the_reference_names() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "sqlite:///reference.sqlite3",
            "TOKENPLANS_DATABASE_URL": "sqlite:///ours.sqlite3",
            "JWT_SECRET": "reference",
            "TOKENPLANS_JWT_SECRET": "ours",
        }
    )

    assert settings.database_url == "sqlite:///ours.sqlite3"
    assert settings.jwt_secret == "ours"


def test_the_environment_wins_over_the_env_file(workdir: Path) -> None:
    (workdir / ".env").write_text(
        "TOKENPLANS_JWT_SECRET=from-file\nTOKENPLANS_JWT_AUDIENCE=file-audience\n"
        "TOKENPLANS_CORS_ORIGINS=https://a.example, https://b.example\n"
    )

    settings = Settings.from_env({"TOKENPLANS_JWT_SECRET": "from-env"})

    assert settings.jwt_secret == "from-env"
    assert settings.jwt_audience == "file-audience"
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_an_empty_variable_counts_as_unset_even_over_the_env_file(workdir: Path) -> None:
    (workdir / ".env").write_text("TOKENPLANS_JWT_AUDIENCE=file-audience\n")

    assert Settings.from_env({"TOKENPLANS_JWT_AUDIENCE": ""}).jwt_audience is None


def test_algorithms_are_a_comma_separated_list() -> None:
    settings = Settings.from_env({"TOKENPLANS_JWT_ALGORITHMS": "RS256, ES256"})

    assert settings.jwt_algorithms == ("RS256", "ES256")


def test_the_body_timeout_defaults_to_thirty_seconds_and_can_be_set() -> None:
    assert Settings.from_env({}).body_timeout_seconds == 30
    assert Settings.from_env({"TOKENPLANS_BODY_TIMEOUT_SECONDS": "5"}).body_timeout_seconds == 5


def test_the_pool_sizes_are_unset_by_default_and_can_be_set_overflow_to_zero() -> None:
    assert (Settings().db_pool_size, Settings().db_max_overflow) == (None, None)

    settings = Settings.from_env(
        {"TOKENPLANS_DB_POOL_SIZE": " 8 ", "TOKENPLANS_DB_MAX_OVERFLOW": "0"}
    )

    assert (settings.db_pool_size, settings.db_max_overflow) == (8, 0)


def test_the_secret_never_appears_in_the_repr() -> None:
    settings = Settings.from_env({"TOKENPLANS_JWT_SECRET": "hunter2-but-much-longer-than-that"})

    assert "hunter2" not in repr(settings)
    assert "jwt_secret='***'" in repr(settings)


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"TOKENPLANS_JWT_REQUIRE_EXP": "maybe"}, "TOKENPLANS_JWT_REQUIRE_EXP"),
        ({"TOKENPLANS_MAX_BODY_BYTES": "-1"}, "TOKENPLANS_MAX_BODY_BYTES"),
        ({"TOKENPLANS_MAX_BODY_BYTES": "lots"}, "TOKENPLANS_MAX_BODY_BYTES"),
        ({"TOKENPLANS_BODY_TIMEOUT_SECONDS": "0"}, "TOKENPLANS_BODY_TIMEOUT_SECONDS"),
        ({"TOKENPLANS_BODY_TIMEOUT_SECONDS": "9" * 5000}, "TOKENPLANS_BODY_TIMEOUT_SECONDS"),
        ({"TOKENPLANS_DB_POOL_SIZE": "0"}, "TOKENPLANS_DB_POOL_SIZE must be a positive integer"),
        ({"TOKENPLANS_DB_POOL_SIZE": "-5"}, "TOKENPLANS_DB_POOL_SIZE"),
        ({"TOKENPLANS_DB_POOL_SIZE": "ten"}, "TOKENPLANS_DB_POOL_SIZE"),
        ({"TOKENPLANS_DB_POOL_SIZE": "\u0663"}, "TOKENPLANS_DB_POOL_SIZE"),  # an Arabic-Indic 3
        ({"TOKENPLANS_DB_MAX_OVERFLOW": "-1"}, "TOKENPLANS_DB_MAX_OVERFLOW must be an integer of"),
        ({"TOKENPLANS_DB_MAX_OVERFLOW": "2.5"}, "TOKENPLANS_DB_MAX_OVERFLOW"),
    ],
)
def test_a_malformed_value_is_refused_naming_its_variable(
    variables: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        Settings.from_env(variables)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (None, "no JWT secret"),
        ("x" * 31, "31 bytes"),
    ],
)
def test_a_missing_or_short_secret_is_a_problem_for_serving(
    secret: str | None, problem: str
) -> None:
    settings = Settings.from_env({} if secret is None else {"JWT_SECRET": secret})

    assert problem in (settings.secret_problem() or "")


def test_a_public_key_identity_needs_no_secret() -> None:
    settings = Settings.from_env({"TOKENPLANS_JWT_JWKS_URL": "https://id.example/jwks.json"})

    assert settings.secret_problem() is None


def test_unset_http_and_razorpay_settings_mean_what_the_adapters_do_given_nothing() -> None:
    settings = Settings.from_env({})
    app_defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(create_app).parameters.items()
    }

    assert settings.cors_origins == app_defaults["cors_origins"]
    assert settings.max_body_bytes == app_defaults["max_body_bytes"] == 64 * 1024
    assert settings.body_timeout_seconds == app_defaults["body_timeout_seconds"] == 30
    assert (
        settings.razorpay_api_url
        == inspect.signature(RazorpayGateway).parameters["api_url"].default
    )


CONFIGURATION_DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _documented_rows() -> list[set[str]]:
    """The variable names in each row of docs/configuration.md's settings table."""
    text = CONFIGURATION_DOC.read_text(encoding="utf-8")
    table = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split(" | ")[0])) for row in rows]


def test_every_setting_has_a_row_in_the_configuration_table_and_every_row_a_setting() -> None:
    declared = [set(variables.names) for _field, variables in config.declared()]
    rows = _documented_rows()

    for names in declared:  # a row documents whole settings: each name, with its aliases
        assert any(names <= row for row in rows), f"no row for {sorted(names)}"
    for row in rows:
        assert row == set().union(*[names for names in declared if names & row]), row
    assert set().union(*rows) == set(config.variable_names())


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {
            "DATABASE_URL": "postgresql+psycopg://app:pw@db/app",
            "JWT_SECRET": "s" * 40,
            "JWT_ALGORITHM": "HS512",
            "TOKENPLANS_DB_POOL_SIZE": "7",
            "TOKENPLANS_DB_MAX_OVERFLOW": "0",
            "TOKENPLANS_JWT_REQUIRE_EXP": "false",
            "TOKENPLANS_CORS_ORIGINS": "https://a.example, https://b.example",
            "TOKENPLANS_MAX_CONCURRENT_PER_SUBJECT": "3",
            "TOKENPLANS_PLANS_FILE": "~/plans.toml",
            "TOKENPLANS_PRICES": "genai-prices",
            "TOKENPLANS_CREDITS_PER_USD": "0.5",
            "TOKENPLANS_PRICED_MODELS": "gpt-4o, claude-sonnet-4",
            "RAZORPAY_KEY_ID": "rzp_test_abc",
            "RAZORPAY_WEBHOOK_SECRET": "w" * 32,
        },
    ],
)
def test_the_exported_environment_reads_back_as_the_same_settings_over_any_env_file(
    environ: dict[str, str], workdir: Path
) -> None:
    # A .env naming every variable (aliases too) must not leak into what workers read.
    (workdir / ".env").write_text(
        "".join(f"{name}=from-the-env-file\n" for name in config.variable_names())
    )
    settings = Settings.from_env(environ, env_file=None)

    assert Settings.from_env(settings.environment()) == settings
