"""A clean configuration for every CLI test: no inherited settings, no stray ``.env``.

Each test runs in its own empty working folder (so ``.env`` and the default SQLite file
land there) with every variable :class:`Settings` reads removed from the environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SETTINGS_VARIABLES = [
    "TOKENPLANS_DATABASE_URL",
    "DATABASE_URL",
    "TOKENPLANS_DB_POOL_SIZE",
    "TOKENPLANS_DB_MAX_OVERFLOW",
    "TOKENPLANS_JWT_SECRET",
    "JWT_SECRET",
    "TOKENPLANS_JWT_ALGORITHMS",
    "JWT_ALGORITHM",
    "TOKENPLANS_JWT_PUBLIC_KEY",
    "TOKENPLANS_JWT_JWKS_URL",
    "TOKENPLANS_JWT_AUDIENCE",
    "TOKENPLANS_JWT_ISSUER",
    "TOKENPLANS_JWT_REQUIRE_EXP",
    "TOKENPLANS_CORS_ORIGINS",
    "TOKENPLANS_BASE_URL",
    "API_BASE_URL",
    "TOKENPLANS_MAX_BODY_BYTES",
    "TOKENPLANS_BODY_TIMEOUT_SECONDS",
    "TOKENPLANS_PLANS_FILE",
    "TOKENPLANS_PRICE_BOOK",
    "TOKENPLANS_PRICES",
    "TOKENPLANS_CREDITS_PER_USD",
    "TOKENPLANS_PRICED_MODELS",
]


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
