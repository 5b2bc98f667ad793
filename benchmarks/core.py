"""Throughput of the core on the in-memory store, against a plain dict + lock counter.

Run ``python benchmarks/core.py``. It prints debits/s and usage-reads/s through
``TokenService`` (one thread on one account, and 8 threads on 8 accounts), and, measured
in the same run as the baseline, a counter increment in a dict under a lock, with the
ratios. The numbers are the floor later work (SQL stores, HTTP) is compared against;
each figure is the best of a few short rounds, to damp scheduler noise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import harness
from harness import OpFactory

from tokenplans import ADMIN_SCOPE, MAX_AMOUNT, PlanCatalog, Principal, SystemClock, TokenService
from tokenplans.testing import InMemoryStore

THREADS = 8
ROUND_SECONDS = 1.0
ROUNDS = 3
ADMIN = Principal("bench-admin", {ADMIN_SCOPE})


def rate(threads: int, make_op: OpFactory) -> float:
    """Operations per second over all threads: the best of ROUNDS rounds."""
    # Batches of 100 between clock checks: the dict+lock baseline is sub-microsecond.
    return harness.rate(threads, make_op, seconds=ROUND_SECONDS, rounds=ROUNDS, batch=100)


def service_ops(kind: str) -> Callable[[int], Callable[[], object]]:
    service = TokenService(InMemoryStore(), PlanCatalog.default(), SystemClock())

    def make(index: int) -> Callable[[], object]:
        user = Principal(f"user-{index}")
        service.grant(ADMIN, MAX_AMOUNT, subject=user.subject)  # never runs dry
        if kind == "debit":
            return lambda: service.consume(user, 1)
        return lambda: service.usage(user)

    return make


def counter_ops() -> Callable[[int], Callable[[], object]]:
    counters: dict[str, int] = {}
    lock = threading.Lock()

    def make(index: int) -> Callable[[], object]:
        key = f"user-{index}"

        def increment() -> None:
            with lock:
                counters[key] = counters.get(key, 0) + 1

        return increment

    return make


def main() -> None:
    print(f"tokenplans core on InMemoryStore; best of {ROUNDS} x {ROUND_SECONDS:.0f} s rounds")
    for threads in (1, THREADS):
        baseline = rate(threads, counter_ops())
        debits = rate(threads, service_ops("debit"))
        reads = rate(threads, service_ops("usage"))
        label = "1 thread, 1 account" if threads == 1 else f"{threads} threads, {threads} accounts"
        print(f"\n{label}")
        print(f"  dict+lock increments/s {baseline:>12,.0f}   (baseline)")
        print(f"  debits/s               {debits:>12,.0f}   1/{baseline / debits:,.0f} of baseline")
        print(f"  usage-reads/s          {reads:>12,.0f}   1/{baseline / reads:,.0f} of baseline")


if __name__ == "__main__":
    main()
