"""A clean configuration for every CLI test: no inherited settings, no stray ``.env``.

Each test runs in its own empty working folder (so ``.env`` and the default SQLite file
land there) with every variable :class:`Settings` reads removed from the environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenplans_adapters.main.config import variable_names

SETTINGS_VARIABLES = variable_names()


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
