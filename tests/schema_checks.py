"""Running a Schemathesis case as a signed-in caller, shared by the OpenAPI test modules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

#: Not positive_data_acceptance: a schema-valid request can still meet a refusal that is
#: the API doing its job (a debit on an empty quota is 402, a user's upgrade 403, a verify
#: for an order that does not exist 404). Every other default check runs.
EXCLUDED_CHECKS = [schemathesis.checks.positive_data_acceptance]


def call_and_validate_as(case: Any, credentials: Mapping[str, str]) -> None:
    """Send ``case`` with the caller's ``Authorization`` header and check the answer.

    A negative case whose headers were generated to be invalid is about the missing or
    malformed credential itself: adding ours back would turn it into a valid request
    that the API rightly accepts, and Schemathesis would call that a failure.
    """
    components = case.meta.components if case.meta is not None else {}
    headers = components.get(ParameterLocation.HEADER)
    mutated = headers is not None and headers.mode is GenerationMode.NEGATIVE
    case.call_and_validate(
        headers=None if mutated else dict(credentials), excluded_checks=EXCLUDED_CHECKS
    )
