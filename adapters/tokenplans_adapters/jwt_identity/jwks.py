"""Signing keys from a JWKS URL, fetched rarely whatever tokens arrive.

Anyone can send a token naming a ``kid`` the identity provider never published: the
verifier cannot check the signature before it has the key, and "refetch the key set when a
kid is unknown" (how key rotation is picked up) turns each such token into a request to
the provider. :class:`JwksKeys` bounds that: at most one fetch per ``refetch_interval``
for all unknown kids together (one within the interval is refused at once, with no
fetch and no waiting), only one thread fetches at a time, and a stale key set keeps
serving known kids while one thread refreshes it, or while the provider is unreachable.
PyJWT's :class:`jwt.PyJWKClient` only fetches and parses here; its own cache holds its
lock for the provider's whole latency and lets every thread fetch an empty cache at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

import jwt

_log = logging.getLogger(__name__)

DEFAULT_LIFESPAN_S = 300.0
DEFAULT_REFETCH_INTERVAL_S = 30.0


class UnknownKeyError(Exception):
    """No key with this ``kid`` is published, as of the last fetch (or none could be
    fetched yet)."""


class JwksKeys:
    """The signing keys published at ``url``, by ``kid``.

    The key set is fetched on first use, refreshed after ``lifespan`` seconds, and
    refetched early for a kid it does not contain, at most once per ``refetch_interval``
    seconds (counted from the last fetch, whatever prompted it). ``clock`` is for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        lifespan: float = DEFAULT_LIFESPAN_S,
        refetch_interval: float = DEFAULT_REFETCH_INTERVAL_S,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lifespan <= 0 or refetch_interval < 0:
            raise ValueError("lifespan must be > 0 and refetch_interval >= 0")
        self.url = url
        self.lifespan = lifespan
        self.refetch_interval = refetch_interval
        self._clock = clock
        # Fetching and parsing only: the caching is ours (module docstring).
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout)
        self._lock = threading.Lock()  # held by the one thread that is fetching
        self._keys: Mapping[str, jwt.PyJWK] = {}  # replaced whole, never mutated
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self.fetches = 0  # attempts, for tests and curiosity

    def signing_key(self, kid: str) -> jwt.PyJWK:
        """The published key ``kid``, or :class:`UnknownKeyError`."""
        keys = self._keys
        if not self._fresh():
            # Nothing yet: wait for the one fetch. Stale: one thread refreshes, the others
            # go on with the keys they have.
            keys = self._refresh(wait=not keys)
        key = keys.get(kid)
        if key is None:
            keys = self._refresh(wait=False)  # a rotated key, or a made-up kid
            key = keys.get(kid)
        if key is None:
            raise UnknownKeyError(self._unknown(kid))
        return key

    def _fresh(self) -> bool:
        fetched = self._fetched_at
        return fetched is not None and self._clock() - fetched < self.lifespan

    def _may_fetch(self) -> bool:
        attempted = self._attempted_at
        return attempted is None or self._clock() - attempted >= self.refetch_interval

    def _refresh(self, *, wait: bool) -> Mapping[str, jwt.PyJWK]:
        """The key set after fetching it if a fetch is due now; without ``wait``, the
        current one at once when another thread is fetching."""
        if not self._lock.acquire(blocking=wait):
            return self._keys
        try:
            if not self._may_fetch():  # fetched just now, perhaps while we waited
                return self._keys
            self._attempted_at = self._clock()
            self.fetches += 1
            try:
                fetched = self._client.get_signing_keys(refresh=True)
            except jwt.PyJWTError as error:  # unreachable, not JSON, no usable keys
                _log.warning("cannot fetch the JWKS from %s: %s", self.url, error)
                return self._keys
            self._keys = {key.key_id: key for key in fetched if key.key_id}
            self._fetched_at = self._clock()
            return self._keys
        finally:
            self._lock.release()

    def _unknown(self, kid: str) -> str:
        if self._fetched_at is None:
            return f"no key set fetched yet from {self.url}"
        age = self._clock() - self._fetched_at
        return (
            f"kid {kid!r} is not in the key set fetched {age:.0f} s ago "
            f"(refetched at most every {self.refetch_interval:g} s)"
        )
