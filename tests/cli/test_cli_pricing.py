"""Configuring prices: a price book file or the genai-prices table, validated at start-up,
so ``serve`` refuses a bad book in one line naming the model and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient
from test_cli_commands import run_console

from tokenplans import PriceBook, UnitPricer
from tokenplans_adapters.genai_prices import GenaiPricesPricer
from tokenplans_adapters.jwt_identity import mint_token
from tokenplans_adapters.main import Settings, build_app
from tokenplans_adapters.main.app import build_pricer
from tokenplans_adapters.main.config import ConfigError
from tokenplans_adapters.sql import upgrade_schema

EXAMPLE_BOOK = Path(__file__).parents[2] / "docs" / "examples" / "prices.toml"
SECRET = "pricing-secret-that-is-long-enough-0123456789abc"

INVALID_BOOKS = [
    (
        'version = "v1"\n[models."gpt-4o"]\ninput = -1\noutput = 2\n',
        "model 'gpt-4o', field 'input'",
    ),
    ('version = "v1"\n[models."o3"]\ninput = 1\n', "model 'o3': field 'output' is required"),
    (
        'version = "v1"\n[models."o3"]\ninput = 1\noutput = 2\nreasonning = 3\n',
        "model 'o3': unknown field(s) ['reasonning']",
    ),
    ('version = "v1"\n[models."*"]\ninput = "1e3"\noutput = 2\n', "field 'input'"),
    ('[models."*"]\ninput = 1\noutput = 2\n', 'field "version" is required'),
]


def test_without_prices_configured_every_token_costs_one_credit() -> None:
    assert build_pricer(Settings.from_env({}, env_file=None)) is None


def test_a_price_book_file_prices_the_served_api(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'app.sqlite3'}"
    upgrade_schema(url)
    settings = Settings.from_env(
        {
            "TOKENPLANS_DATABASE_URL": url,
            "TOKENPLANS_JWT_SECRET": SECRET,
            "TOKENPLANS_PRICE_BOOK": str(EXAMPLE_BOOK),
        },
        env_file=None,
    )
    usage = {"model": "gpt-4o", "input_tokens": 600, "output_tokens": 300, "cache_read_tokens": 400}

    with TestClient(build_app(settings)) as client:
        pricing = client.get("/api/pricing").json()
        consumed = client.post(
            "/api/tokens/consume",
            headers={"Authorization": f"Bearer {mint_token('alice', secret=SECRET)}"},
            json={"usage": usage},
        ).json()

    assert (pricing["kind"], pricing["version"]) == ("price_book", "2026-12-01")
    assert (consumed["credits"], consumed["price_version"]) == (5, "2026-12-01")


def test_genai_prices_is_chosen_with_credits_per_usd_and_listed_models() -> None:
    settings = Settings.from_env(
        {
            "TOKENPLANS_PRICES": "genai-prices",
            "TOKENPLANS_CREDITS_PER_USD": "1000",
            "TOKENPLANS_PRICED_MODELS": "gpt-4o, claude-sonnet-4-5",
        },
        env_file=None,
    )

    pricer = build_pricer(settings)

    assert isinstance(pricer, GenaiPricesPricer)
    described = pricer.describe()
    assert described["credits_per_usd"] == "1000"
    assert sorted(described["models"]) == ["claude-sonnet-4-5", "gpt-4o"]


def test_a_decimal_credits_per_usd_is_read_exactly() -> None:
    settings = Settings.from_env(
        {"TOKENPLANS_PRICES": "genai-prices", "TOKENPLANS_CREDITS_PER_USD": "0.5"}, env_file=None
    )

    pricer = build_pricer(settings)

    assert pricer is not None
    assert pricer.describe()["credits_per_usd"] == "0.5"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"TOKENPLANS_PRICE_BOOK": "prices.toml", "TOKENPLANS_PRICES": "genai-prices"},
            "both set",
        ),
        ({"TOKENPLANS_PRICES": "litellm"}, "must be 'genai-prices'"),
        ({"TOKENPLANS_PRICES": "genai-prices"}, "needs TOKENPLANS_CREDITS_PER_USD"),
        ({"TOKENPLANS_CREDITS_PER_USD": "1000"}, "without TOKENPLANS_PRICES"),
        ({"TOKENPLANS_PRICED_MODELS": "gpt-4o"}, "without TOKENPLANS_PRICES"),
    ],
)
def test_inconsistent_price_settings_are_refused_naming_the_variable(
    variables: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(variables, env_file=None)


@pytest.mark.parametrize("credits_per_usd", ["0", "-3", "lots"])
def test_an_unusable_credits_per_usd_fails_at_start_up(credits_per_usd: str) -> None:
    settings = Settings.from_env(
        {"TOKENPLANS_PRICES": "genai-prices", "TOKENPLANS_CREDITS_PER_USD": credits_per_usd},
        env_file=None,
    )

    with pytest.raises(ValueError, match="credits_per_usd"):
        build_pricer(settings)


@pytest.mark.parametrize(("book", "named"), INVALID_BOOKS)
def test_serve_refuses_an_invalid_price_book_naming_the_model_and_field(
    workdir: Path, book: str, named: str
) -> None:
    (workdir / "prices.toml").write_text(book)

    done = run_console(
        "serve",
        "--dev",
        "--port",
        "18791",
        cwd=workdir,
        env={"TOKENPLANS_PRICE_BOOK": "prices.toml"},
    )

    assert done.returncode == 2
    assert done.stderr.startswith("tokenplans: error: price book")
    assert named in done.stderr
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert not (workdir / "tokenplans.sqlite3").exists()  # refused before anything started


def test_serve_refuses_both_sources_of_prices_in_one_line(workdir: Path) -> None:
    done = run_console(
        "serve",
        "--dev",
        "--port",
        "18792",
        cwd=workdir,
        env={"TOKENPLANS_PRICE_BOOK": str(EXAMPLE_BOOK), "TOKENPLANS_PRICES": "genai-prices"},
    )

    assert done.returncode == 2
    assert "TOKENPLANS_PRICE_BOOK and TOKENPLANS_PRICES are both set" in done.stderr


def test_serve_refuses_an_unknown_priced_model_in_one_line(workdir: Path) -> None:
    done = run_console(
        "serve",
        "--dev",
        "--port",
        "18793",
        cwd=workdir,
        env={
            "TOKENPLANS_PRICES": "genai-prices",
            "TOKENPLANS_CREDITS_PER_USD": "1000",
            "TOKENPLANS_PRICED_MODELS": "gpt-4o, gpt-4oo",
        },
    )

    assert done.returncode == 2
    assert done.stderr.startswith("tokenplans: error: TOKENPLANS_PRICED_MODELS: 'gpt-4oo' ")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert not (workdir / "tokenplans.sqlite3").exists()  # refused before anything started


def test_an_unknown_priced_model_is_a_config_error_naming_the_variable() -> None:
    settings = Settings.from_env(
        {
            "TOKENPLANS_PRICES": "genai-prices",
            "TOKENPLANS_CREDITS_PER_USD": "1000",
            "TOKENPLANS_PRICED_MODELS": "no-such-model",
        },
        env_file=None,
    )

    with pytest.raises(ConfigError, match="TOKENPLANS_PRICED_MODELS: 'no-such-model' is not"):
        build_pricer(settings)


def test_a_missing_price_book_file_fails_naming_it(workdir: Path) -> None:
    settings = Settings.from_env({"TOKENPLANS_PRICE_BOOK": "nowhere.toml"}, env_file=None)

    with pytest.raises(ValueError, match=r"nowhere\.toml"):
        build_pricer(settings)


def test_the_unit_pricer_is_what_an_unconfigured_service_uses(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'app.sqlite3'}"
    upgrade_schema(url)
    settings = Settings.from_env(
        {"TOKENPLANS_DATABASE_URL": url, "TOKENPLANS_JWT_SECRET": SECRET}, env_file=None
    )

    with TestClient(build_app(settings)) as client:
        assert client.get("/api/pricing").json()["kind"] == "unit"
    assert UnitPricer().describe()["kind"] == "unit"
    assert PriceBook.from_file(EXAMPLE_BOOK).version == "2026-12-01"
