"""Who may do what (README, "How quotas work"), as plain checks that raise
:class:`PermissionDeniedError`.

Every use case calls one of these before touching an account, so an adapter that
authenticates a principal needs no rules of its own.
"""

from __future__ import annotations

from tokenplans._values.plans import Plan
from tokenplans._values.principal import Principal
from tokenplans.errors import PermissionDeniedError


def check_can_read(principal: Principal, subject: str) -> None:
    """A user reads its own account; an admin reads any."""
    if principal.subject != subject and not principal.is_admin:
        raise PermissionDeniedError("not_yours", "you may only act on your own account")


def check_can_debit(principal: Principal, subject: str) -> None:
    """The subject itself consumes, or an admin on its behalf."""
    check_can_read(principal, subject)


def check_is_admin(principal: Principal, action: str) -> None:
    """Only an admin may do ``action`` (a phrase: "sweep expired holds")."""
    if not principal.is_admin:
        raise PermissionDeniedError("admin_only", f"only an admin may {action}")


def check_can_grant(principal: Principal) -> None:
    """Only an admin adds tokens."""
    check_is_admin(principal, "grant tokens")


def check_can_change_plan(
    principal: Principal,
    subject: str,
    *,
    current: Plan,
    target: Plan,
    reset_used: bool,
) -> None:
    """A user may move its own account to its current plan or a lower one. Any upgrade,
    to a paid plan or a free one such as a trial, needs a confirmed payment (see
    :mod:`tokenplans._rules.payments`) or an admin: an upgrade wipes usage and carries the
    remainder over, so a free self-service upgrade would be an endless token tap. And
    ``reset_used`` is an admin's tool, else anyone could wipe their own usage."""
    check_can_read(principal, subject)
    if principal.is_admin:
        return
    if reset_used:
        check_is_admin(principal, "reset used tokens")
    if target.rank <= current.rank:
        return
    if target.is_free:
        raise PermissionDeniedError(
            "admin_only", f"moving up to {target.id} is an upgrade: only an admin may assign it"
        )
    raise PermissionDeniedError(
        "payment_required", f"upgrading to {target.id} needs a confirmed payment"
    )
