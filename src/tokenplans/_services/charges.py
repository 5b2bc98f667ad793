"""What a request charges: an ``amount`` as given, or a model call priced into credits by
the service's pricer before anything is read, so a call it cannot price changes nothing."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from tokenplans._pricing.quotes import Pricer, Quote
from tokenplans._values.accounts import Account, Usage
from tokenplans._values.holds import Hold
from tokenplans._values.limits import MAX_AMOUNT, check_amount
from tokenplans._values.model_usage import Estimate, ModelUsage, PricedCall
from tokenplans.errors import InvalidRequestError


def charge(
    pricer: Pricer,
    what: str,
    amount: int | None,
    usage: ModelUsage | None,
    check: Callable[[object], int],
) -> tuple[int, PricedCall | None]:
    """The credits of a request that gives an ``amount`` (checked by ``check``) or a
    model call's ``usage`` to price, exactly one; and what was priced."""
    if (amount is None) == (usage is None):
        raise InvalidRequestError(f"{what} takes an amount or a usage: exactly one of them")
    if usage is None:
        return check(amount), None
    if not isinstance(usage, ModelUsage):
        raise InvalidRequestError(f"usage must be a ModelUsage, got {usage!r}")
    return priced(usage, pricer.price(usage))


def hold_for(
    pricer: Pricer, amount: int | None, estimate: Estimate | None
) -> tuple[int, PricedCall | None]:
    """What a reserve holds: its ``amount``, or the most its ``estimate`` can cost."""
    if (amount is None) == (estimate is None):
        raise InvalidRequestError("reserve takes an amount or an estimate: exactly one of them")
    if estimate is None:
        return check_amount(amount), None
    if not isinstance(estimate, Estimate):
        raise InvalidRequestError(f"estimate must be an Estimate, got {estimate!r}")
    quote = pricer.estimate(estimate.model, estimate.input_tokens, estimate.max_output_tokens)
    return priced(estimate.as_usage(), quote)


def priced(usage: ModelUsage, quote: Quote) -> tuple[int, PricedCall]:
    """A quote's credits, within what one request may charge, and the fact to record."""
    if quote.credits > MAX_AMOUNT:
        raise InvalidRequestError(
            f"the call costs {quote.credits} credits, more than one request may charge "
            f"({MAX_AMOUNT})"
        )
    return quote.credits, PricedCall(usage, quote.credits, quote.price_version)


def at_least_one_credit(what: str, credits: int) -> None:
    """A debit or a hold costs at least one credit, priced or not (an ``amount`` of 0 is
    refused by its check): each one writes rows, and rows nobody pays for would let an
    account grow without bound. A settle of 0 stays valid: it closes a hold."""
    if credits < 1:
        raise InvalidRequestError(
            f"the call costs 0 credits: {what} takes at least 1 (a model the price book "
            "prices at 0, or a call of no tokens, is not metered)"
        )


def answered(hold: Hold, account: Account, priced_call: PricedCall | None = None) -> Hold:
    """The hold a reserve, settle, release or read answers: with the account's usage as
    the request left it, and a priced one with the call it was priced from."""
    return attrs.evolve(
        hold, usage=Usage.of(account), priced=hold.priced if priced_call is None else priced_call
    )
