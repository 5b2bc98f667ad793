"""Shared test configuration.

Hypothesis profiles live here (STYLE.md): ``dev`` is quick for the edit-test loop, ``ci``
digs deeper. Pick one with the HYPOTHESIS_PROFILE environment variable (default ``dev``);
``nox`` passes it through and ``.ci/run`` sets ``ci``.

Fixtures shared across the suite (clock, in-memory store, database URLs) are added below
as the packages they need land.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
