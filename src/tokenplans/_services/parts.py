"""What every token use case stands on: the parts a :class:`TokenService` holds, and whose
account a request names."""

from __future__ import annotations

from tokenplans._ports import AccountStore, Clock
from tokenplans._pricing.quotes import Pricer
from tokenplans._values.plans import PlanCatalog
from tokenplans._values.principal import Principal

from .loop import AccountUpdater


class ServiceParts:
    """The store, catalog, clock and pricer of a token service, and its update loop.
    :class:`~tokenplans.TokenService` sets them; the use-case modules read them."""

    store: AccountStore
    catalog: PlanCatalog
    clock: Clock
    pricer: Pricer
    _accounts: AccountUpdater


def whose(principal: Principal, subject: str | None) -> str:
    """The account a request names: ``subject``, or the principal's own when omitted."""
    return principal.subject if subject is None else subject
