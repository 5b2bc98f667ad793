"""The errors pricing raises: a bad price configuration, and a model nobody priced."""

from __future__ import annotations

from tokenplans._values.errors import TokenplansError


class PriceBookError(TokenplansError, ValueError):
    """A price book (or a pricer's configuration) is invalid; the message names the model
    and field, so a bad file fails at start-up rather than on the first bill."""


class UnknownModelError(TokenplansError, LookupError):
    """The pricer has no rate for this model and no ``default``: nothing may be charged."""

    def __init__(self, model: str) -> None:
        super().__init__(f"unknown model {model!r}")
        self.model = model
