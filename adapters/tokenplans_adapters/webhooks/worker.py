"""The delivery worker: claims due deliveries from the outbox, POSTs each signed event to
its endpoint, and records the outcome (docs/events.md).

At least once: a delivery is recorded only after its answer, so a worker killed between
sending and recording leaves it leased, and when the lease lapses it is sent again with
the same ``webhook-id`` (the event's id), which receivers deduplicate on. A 2xx is
delivered; anything else (another status, a timeout, a refused or unreachable target) is
retried after the next delay of the schedule, with jitter, until the schedule runs out
(the delivery failed). An endpoint that has not succeeded for ``disable_after_seconds``
is disabled, once. Deliveries of one worker run in a few threads, so a slow receiver
holds up only its own subject's events; a debit never waits for any of this.
"""

from __future__ import annotations

import enum
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from tokenplans import StorageUnavailableError
from tokenplans.ports import Attempt, Claim, EventStore

from .signing import signature_headers
from .targets import TargetRefused, check_target

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("tokenplans.webhooks")

#: Seconds before each retry: 11 attempts over about a day (23.9 h).
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (
    5,
    60,
    300,
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
    28800,
)
_MAX_ERROR = 300


class Outcome(enum.StrEnum):
    """What one attempt came to (the metrics' label values)."""

    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"


@attrs.frozen
class DeliverySettings:
    """How the worker delivers. ``retry_schedule``: the seconds before each retry (its
    length is the number of retries); ``jitter``: each delay is scaled by a random factor
    in ``[1 - jitter, 1 + jitter]``; ``timeout_seconds``: for each request, connect to
    last byte; ``disable_after_seconds``: how long an endpoint may fail without a success
    before it is disabled; ``allow_private_targets``: send to loopback and private
    addresses too (a receiver on this machine or network)."""

    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    jitter: float = 0.2
    timeout_seconds: float = 10.0
    disable_after_seconds: float = 86400.0
    allow_private_targets: bool = False
    batch: int = 50
    concurrency: int = 8
    poll_seconds: float = 1.0

    def __attrs_post_init__(self) -> None:
        if any(delay < 0 for delay in self.retry_schedule):
            raise ValueError("retry delays must be >= 0 seconds")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if not self.timeout_seconds > 0 or not self.poll_seconds > 0:
            raise ValueError("timeout_seconds and poll_seconds must be > 0")
        if self.batch < 1 or self.concurrency < 1:
            raise ValueError("batch and concurrency must be >= 1")

    @property
    def lease_seconds(self) -> float:
        """How long a claim is held: the request's timeout and a margin to record it."""
        return self.timeout_seconds + 10.0

    def retry_at(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after the ``attempts``-th failed attempt, or ``None``."""
        if attempts > len(self.retry_schedule):
            return None
        delay = self.retry_schedule[attempts - 1]
        factor = random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - not crypto
        return now + timedelta(seconds=delay * factor)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeliveryWorker:
    """Delivers the outbox of ``store``. :meth:`run_once` delivers one batch (the CLI's
    ``--once``); :meth:`start` runs it in a background thread until :meth:`stop`.
    ``on_outcome`` is called with each attempt's :class:`Outcome` (a metrics counter);
    :attr:`outcomes` counts them too."""

    def __init__(
        self,
        store: EventStore,
        settings: DeliverySettings | None = None,
        *,
        client: httpx.Client | None = None,
        now: Callable[[], datetime] = _utc_now,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or DeliverySettings()
        # Made on the first delivery: a server with no endpoint never loads httpx (about
        # 5 MiB of each worker's memory).
        self._client = client
        self._client_lock = threading.Lock()
        self._owns_client = client is None
        self._now = now
        self._on_outcome = on_outcome
        self.outcomes: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
        self._pool = ThreadPoolExecutor(self.settings.concurrency, "tokenplans-webhook")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._count_lock = threading.Lock()

    # -- running -------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim one batch of due deliveries and deliver it; how many were claimed."""
        claims = self.store.claim_deliveries(
            self._now(), limit=self.settings.batch, lease_seconds=self.settings.lease_seconds
        )
        list(self._pool.map(self.deliver, claims))
        return len(claims)

    def run_until_idle(self, *, max_rounds: int = 1000) -> int:
        """:meth:`run_once` until nothing is due; how many were claimed in all."""
        total = 0
        for _ in range(max_rounds):
            claimed = self.run_once()
            total += claimed
            if not claimed:
                break
        return total

    def start(self) -> threading.Thread:
        """Deliver in a daemon thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tokenplans-webhooks", daemon=True)
        self._thread.start()
        return self._thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self.run_once()
            except StorageUnavailableError as error:
                logger.warning("webhook delivery paused: %s", error)
                claimed = 0
            except Exception:
                logger.exception("webhook delivery round failed")
                claimed = 0
            if not claimed:
                self._stop.wait(self.settings.poll_seconds)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread (after its current round) and release the client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False)
        if self._owns_client and self._client is not None:
            self._client.close()

    def _http(self) -> httpx.Client:
        """The worker's HTTP client, made on first use."""
        with self._client_lock:
            if self._client is None:
                import httpx  # noqa: PLC0415 - see __init__

                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.settings.timeout_seconds),
                    follow_redirects=False,
                    headers={"user-agent": "tokenplans-webhooks"},
                )
            return self._client

    # -- one delivery ----------------------------------------------------------------

    def deliver(self, claim: Claim) -> Outcome:
        """Send one claimed delivery and record what came of it."""
        status, error = self._send(claim)
        at = self._now()
        delivered = status is not None and 200 <= status < 300  # noqa: PLR2004
        retry_at = None if delivered else self.settings.retry_at(claim.delivery.attempts + 1, at)
        attempt = Attempt(
            at=at,
            delivered=delivered,
            status_code=status,
            error=error,
            retry_at=retry_at,
            disable_after_seconds=self.settings.disable_after_seconds,
        )
        if self.store.finish_delivery(claim, attempt):
            logger.warning(
                "webhook endpoint %s disabled: no successful delivery for %s seconds",
                claim.endpoint.id,
                int(self.settings.disable_after_seconds),
            )
        outcome = (
            Outcome.DELIVERED
            if delivered
            else Outcome.RETRYING
            if retry_at is not None
            else Outcome.FAILED
        )
        with self._count_lock:
            self.outcomes[outcome] += 1
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome

    def _send(self, claim: Claim) -> tuple[int | None, str | None]:
        endpoint, event = claim.endpoint, claim.event
        try:
            check_target(endpoint.url, allow_private=self.settings.allow_private_targets)
        except TargetRefused as refused:
            return None, f"refused: {refused}"[:_MAX_ERROR]
        body = json.dumps(event.payload(), separators=(",", ":"), ensure_ascii=False).encode()
        # The real time of signing (receivers refuse stale timestamps), not the worker's
        # scheduling clock.
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            **signature_headers(endpoint.secret, event.id, timestamp, body),
        }
        import httpx  # noqa: PLC0415 - loaded by the first delivery (see __init__)

        try:
            response = self._http().post(endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}"[:_MAX_ERROR]
        error_text = None if response.is_success else f"HTTP {response.status_code}"
        return response.status_code, error_text


def parse_schedule(text: str) -> tuple[float, ...]:
    """A retry schedule from its setting: seconds separated by commas (``5,60,300``)."""
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise ValueError(f"a retry schedule is seconds separated by commas: {text!r}") from error
    if any(delay < 0 for delay in delays):
        raise ValueError("retry delays must be >= 0 seconds")
    return delays


__all__: Sequence[str] = ("DeliverySettings", "DeliveryWorker", "Outcome", "parse_schedule")
