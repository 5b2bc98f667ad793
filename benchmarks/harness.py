"""What the benchmark scripts share: operations per second over a pool of threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: ``make_op(worker_index)`` returns the operation that worker repeats.
OpFactory = Callable[[int], Callable[[], object]]


def rate(
    threads: int, make_op: OpFactory, *, seconds: float = 1.0, rounds: int = 3, batch: int = 1
) -> float:
    """Operations per second over all threads: the best of ``rounds`` rounds, to damp
    scheduler noise. Each worker checks the clock every ``batch`` operations (raise it for
    operations so cheap that the check would be part of the measurement)."""
    return max(_round(threads, make_op, seconds, batch) for _ in range(rounds))


def _round(threads: int, make_op: OpFactory, seconds: float, batch: int) -> float:
    counts = [0] * threads
    stop = threading.Event()
    barrier = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        op = make_op(index)
        barrier.wait()
        done = 0
        while not stop.is_set():
            for _ in range(batch):
                op()
            done += batch
        counts[index] = done

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in workers:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)
