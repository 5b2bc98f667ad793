"""The README's library example ("Using it as a library"), as a file.

`nox -s package` runs it against the built wheel, installed without extras, in a fresh
virtual environment; tests/core/test_readme.py checks that the README shows it as it is.
It needs nothing but tokenplans itself.
"""

from datetime import UTC, datetime, timedelta

from tokenplans import ADMIN_SCOPE, PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock

clock = SettableClock(datetime(2026, 1, 15, tzinfo=UTC))  # SystemClock() in production
service = TokenService(InMemoryStore(), PlanCatalog.default(), clock)
alice, admin = Principal("alice"), Principal("ops", {ADMIN_SCOPE})

service.consume(alice, 300, idempotency_key="chat-7f3a9c")  # a retry with the key debits once
assert service.usage(alice).remaining == 700  # basic: 1000 tokens a month

change = service.set_plan(admin, "standard", subject="alice")  # users upgrade by paying
assert change.message == "upgraded to standard with carry-over"
assert change.usage.token_quota == 10_700  # 10,000 plus the 700 left over

service.grant(admin, 500, subject="alice")  # admin only; lapses with the period
clock.advance(timedelta(days=31))  # the 30-day term ends: back on basic
assert service.usage(alice).plan == "basic"
