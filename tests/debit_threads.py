"""Many threads debiting one account at once: the load the concurrency tests share."""

from __future__ import annotations

import threading

from tokenplans import InsufficientTokensError, Principal, TokenService


def debit_from_threads(
    service: TokenService, subject: str, *, threads: int, debits_per_thread: int
) -> int:
    """``threads`` threads, released together, each making ``debits_per_thread`` debits of
    1 to 7 tokens (so the account runs dry mid-way and some are refused); the tokens the
    accepted debits took. An unexpected error in any thread is raised here."""
    start = threading.Barrier(threads)
    succeeded = [0] * threads
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            start.wait()
            for attempt in range(debits_per_thread):
                amount = 1 + (index + attempt) % 7
                try:
                    service.consume(Principal(subject), amount)
                except InsufficientTokensError:
                    continue
                succeeded[index] += amount
        except BaseException as error:  # raised below, in the test's thread
            errors.append(error)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return sum(succeeded)
