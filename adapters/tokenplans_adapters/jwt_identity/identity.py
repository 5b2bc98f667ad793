"""The PyJWT identity provider and the token minter the CLI uses."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tokenplans import MAX_SUBJECT_LENGTH, AuthenticationError, Principal

from .jwks import DEFAULT_REFETCH_INTERVAL_S, JwksKeys, UnknownKeyError

_log = logging.getLogger(__name__)

#: Tokens longer than this are refused before any parsing: no identity provider issues
#: them, and decoding attacker-sized JSON is work we need not do.
MAX_TOKEN_BYTES = 8 * 1024
MAX_KID_LENGTH = 256

#: A scope token (RFC 6749 section 3.3): printable ASCII except space, ``"`` and ``\``.
#: Scopes are separated by one ASCII space, and by nothing else.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
#: How much of a refusal reason a log line keeps (a kid or a claim may be long).
_MAX_REASON_CHARS = 300

#: HMAC algorithms and the shortest secret each accepts (its digest size, RFC 7518 §3.2).
_HMAC_MIN_SECRET = {"HS256": 32, "HS384": 48, "HS512": 64}
_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC = frozenset({"ES256", "ES384", "ES512"})
_OKP = frozenset({"EdDSA"})
_ASYMMETRIC = _RSA | _EC | _OKP

#: One message for every refusal: a client learns nothing about which check failed.
_REFUSED = "invalid or expired token"

#: How many verified tokens an identity remembers, and for how long at most (below).
VERIFIED_CACHE_SIZE = 1024
VERIFIED_CACHE_SECONDS = 60.0


class JwtConfigError(ValueError):
    """The identity configuration is unusable (no key, mixed key families, short secret)."""


def _algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(algorithms))
    if not chosen:
        raise JwtConfigError("configure at least one JWT algorithm, e.g. HS256")
    unknown = [alg for alg in chosen if alg not in _HMAC_MIN_SECRET and alg not in _ASYMMETRIC]
    if unknown:
        # "none" lands here too: an unsigned token is never accepted.
        raise JwtConfigError(f"unsupported JWT algorithm(s) {unknown}")
    return chosen


def _load_public_key(pem: str | bytes, algorithms: tuple[str, ...]) -> Any:
    try:
        key = load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except (ValueError, TypeError) as error:
        raise JwtConfigError(f"the JWT public key is not a PEM public key: {error}") from None
    family: frozenset[str]
    if isinstance(key, rsa.RSAPublicKey):
        family = _RSA
    elif isinstance(key, ec.EllipticCurvePublicKey):
        family = _EC
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        family = _OKP
    else:
        raise JwtConfigError(f"unsupported public key type {type(key).__name__}")
    wrong = [alg for alg in algorithms if alg not in family]
    if wrong:
        raise JwtConfigError(f"algorithm(s) {wrong} cannot be verified with this public key")
    return key


class JwtIdentity:
    """Verifies bearer JWTs and turns their claims into a :class:`Principal`.

    Give exactly one of ``secret`` (HMAC: ``algorithms`` all HS*), ``public_key`` (a PEM
    public key: ``algorithms`` all of its family) or ``jwks_url`` (keys fetched and
    cached by ``kid``; ``algorithms`` all asymmetric). Only ``algorithms`` are accepted,
    whatever the token's header says, so ``alg: none`` and HS256-signed-with-the-public-key
    are refused by construction.

    The subject is ``sub``, else ``user_id`` (an integer counts as its decimal text, as
    in the original service's tokens); scopes come from ``scope`` (space-separated) and/or
    ``scopes`` (a list of strings). ``exp`` is required unless ``require_exp=False``.
    ``audience`` and ``issuer`` are checked when given; when no audience is configured, a
    token that names one is refused (it was meant for someone else). A scope outside
    RFC 6749's character set refuses the whole token. Every refusal is an
    :class:`AuthenticationError` with the same short message; the reason is logged at
    INFO level (never the token or its signature), so a key, ``aud`` or ``iss`` mismatch
    can be debugged from the server log.

    With ``jwks_url``, keys are cached for 5 minutes, and an unknown ``kid`` refetches
    the key set at most once per ``jwks_refetch_interval`` seconds for all such tokens
    together (see :class:`~tokenplans_adapters.jwt_identity.jwks.JwksKeys`).

    A frontend sends the same token with every request until it expires, so a verified
    token's principal is remembered (up to ``verified_cache_size`` tokens, keyed by the
    whole token, signature included) and answered again without decoding, while the
    token is still valid by its ``exp`` and the leeway, and for at most
    ``verified_cache_seconds`` (under a JWKS key set's 5 minutes, so a key withdrawn
    from it stops being honoured no later than without the cache). A refused token is
    never remembered, so every attack is checked in full every time.
    ``verified_cache_size=0`` turns this off.
    """

    def __init__(
        self,
        *,
        secret: str | bytes | None = None,
        public_key: str | bytes | None = None,
        jwks_url: str | None = None,
        algorithms: Iterable[str] = ("HS256",),
        audience: str | None = None,
        issuer: str | None = None,
        leeway: timedelta = timedelta(seconds=30),
        require_exp: bool = True,
        jwks_refetch_interval: float = DEFAULT_REFETCH_INTERVAL_S,
        verified_cache_size: int = VERIFIED_CACHE_SIZE,
        verified_cache_seconds: float = VERIFIED_CACHE_SECONDS,
    ) -> None:
        if verified_cache_size < 0 or verified_cache_seconds < 0:
            raise JwtConfigError("the verified-token cache's size and seconds must be >= 0")
        self.algorithms = _algorithms(algorithms)
        given = [name for name, value in _sources(secret, public_key, jwks_url) if value]
        if len(given) != 1:
            raise JwtConfigError(
                "configure exactly one of a JWT secret, a public key or a JWKS URL"
                + (f" (got {', '.join(given)})" if given else "")
            )
        hmac = [alg for alg in self.algorithms if alg in _HMAC_MIN_SECRET]
        if secret:
            if len(hmac) != len(self.algorithms):
                raise JwtConfigError("a JWT secret verifies HS256/HS384/HS512 only")
            raw = secret.encode() if isinstance(secret, str) else secret
            shortest = max(_HMAC_MIN_SECRET[alg] for alg in self.algorithms)
            if len(raw) < shortest:
                raise JwtConfigError(
                    f"the JWT secret is {len(raw)} bytes; {'/'.join(self.algorithms)} "
                    f"needs at least {shortest}"
                )
        elif hmac:
            raise JwtConfigError(f"{hmac} need a secret, not a public key or JWKS URL")
        self._secret = secret
        self._public_key = _load_public_key(public_key, self.algorithms) if public_key else None
        self._jwks = (
            JwksKeys(jwks_url, refetch_interval=jwks_refetch_interval) if jwks_url else None
        )
        self.audience = audience or None
        self.issuer = issuer or None
        self.leeway = leeway
        self.require_exp = require_exp
        #: Only a JWKS lookup does I/O (on a key-cache miss); a check by secret or PEM is
        #: a few microseconds of CPU, which an async caller may run inline.
        self.may_block = self._jwks is not None
        self._verified = _VerifiedTokens(verified_cache_size, verified_cache_seconds)

    def __repr__(self) -> str:
        # Never the secret: reprs end up in logs and tracebacks.
        key = "secret=***" if self._secret else "public_key=..." if self._public_key else "jwks"
        return (
            f"JwtIdentity({key}, algorithms={list(self.algorithms)!r}, "
            f"audience={self.audience!r}, issuer={self.issuer!r})"
        )

    def known(self, credential: str) -> Principal | None:
        """The principal of ``credential`` if it was verified before and is still valid,
        else ``None``: a dictionary look-up, never I/O, so a caller may ask it on the
        event loop before sending :meth:`authenticate` to a thread (a JWKS fetch)."""
        return self._verified.get(credential) if isinstance(credential, str) else None

    def authenticate(self, credential: str) -> Principal:
        """The principal the token proves, or :class:`AuthenticationError`."""
        try:
            if (remembered := self.known(credential)) is not None:
                return remembered
            claims = self._claims(credential)
            principal = _principal(claims)
            # PyJWT read ``exp`` as int(claims["exp"]); so does the cache's deadline.
            expires = None if claims.get("exp") is None else int(claims["exp"])
        except (
            jwt.PyJWTError,
            _Refused,
            UnknownKeyError,
            ValueError,
            TypeError,
            KeyError,
        ) as error:
            _log.info("refused a bearer token: %s", self._reason(error, credential))
            raise AuthenticationError(_REFUSED) from None
        valid_until = None if expires is None else expires + self.leeway.total_seconds()
        self._verified.put(credential, principal, valid_until)
        return principal

    def _reason(self, error: Exception, credential: str) -> str:
        """Why a token was refused, for the log: the check that failed and, for ``aud`` and
        ``iss``, what the token said against what is expected. Never the token, nor its
        signature; claim values are the token's own word (unverified), shown as such."""
        reason = f"{type(error).__name__}: {error}"
        if isinstance(error, jwt.InvalidAudienceError | jwt.InvalidIssuerError):
            claim, expected = (
                ("aud", self.audience)
                if isinstance(error, jwt.InvalidAudienceError)
                else ("iss", self.issuer)
            )
            said = _unverified_claims(credential).get(claim)
            reason += f" (token {claim} {said!r}, expected {expected!r})"
        # Escape what is not printable (newlines, control and odd space characters):
        # one refusal, one unambiguous log line.
        return "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode() for c in reason
        )[:_MAX_REASON_CHARS]

    def _claims(self, credential: str) -> dict[str, Any]:
        if not isinstance(credential, str) or len(credential) > MAX_TOKEN_BYTES:
            raise _Refused("not a string, or too long")
        if not credential.isascii() or credential.count(".") != 2:  # noqa: PLR2004 - JWS parts
            raise _Refused("not a compact JWS")
        key: Any
        if self._jwks is not None:
            key = self._jwks.signing_key(self._kid(credential))
        elif self._public_key is not None:
            key = self._public_key
        else:
            key = self._secret
        claims: dict[str, Any] = jwt.decode(
            credential,
            key,
            algorithms=list(self.algorithms),
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway,
            options={
                "require": ["exp"] if self.require_exp else [],
                # We read sub ourselves: the original service's tokens carried integers.
                "verify_sub": False,
                "enforce_minimum_key_length": True,
            },
        )
        return claims

    def _kid(self, credential: str) -> str:
        """The ``kid`` a token names, checked before any key lookup: a token whose
        algorithm we would refuse anyway costs no fetch."""
        header = jwt.get_unverified_header(credential)
        if header.get("alg") not in self.algorithms:
            raise _Refused(f"alg {header.get('alg')!r} is not one of {list(self.algorithms)}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not 1 <= len(kid) <= MAX_KID_LENGTH:
            raise _Refused("no usable kid in the header")
        return kid


class _VerifiedTokens:
    """Verified tokens' principals, each until its token expires (``exp`` plus the
    leeway, on the wall clock PyJWT checks it by) or ``seconds`` after it was verified,
    whichever comes first. Bounded: the oldest entry makes room for a new one. Reads take
    no lock (a dict look-up is atomic); writers share one."""

    def __init__(self, size: int, seconds: float) -> None:
        self._size = size if seconds > 0 else 0
        self._seconds = seconds
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        principal, deadline = entry
        if time.time() < deadline:
            return principal
        with self._lock:
            self._entries.pop(token, None)
        return None

    def put(self, token: str, principal: Principal, valid_until: float | None) -> None:
        if not self._size:
            return
        deadline = time.time() + self._seconds
        if valid_until is not None:
            deadline = min(deadline, valid_until)
        with self._lock:
            while len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]
            self._entries[token] = (principal, deadline)

    def __len__(self) -> int:
        return len(self._entries)


class _Refused(Exception):
    """A token refused by our own checks (as opposed to PyJWT's)."""


def _sources(*values: object) -> list[tuple[str, object]]:
    return list(zip(("secret", "public key", "JWKS URL"), values, strict=True))


def _subject(claims: Mapping[str, Any]) -> str:
    name = "sub" if claims.get("sub") is not None else "user_id"
    value = claims.get(name)
    if isinstance(value, bool):
        raise _Refused(f"{name} is a boolean")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SUBJECT_LENGTH:
        raise _Refused(f"{name} is not a subject: {type(value).__name__}")
    return value


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """``scope`` split on the ASCII space only (RFC 6749 section 3.3), plus ``scopes``.
    Any scope with a character outside the RFC's set refuses the token: it is forged or
    broken (``"read\u2003tokenplans:admin"`` must not read as two scopes, nor as one)."""
    scopes: list[str] = []
    if "scope" in claims:
        if not isinstance(claims["scope"], str):
            raise _Refused("scope is not a string")
        scopes += [s for s in claims["scope"].split(" ") if s]
    if "scopes" in claims:
        listed = claims["scopes"]
        if not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
            raise _Refused("scopes is not a list of strings")
        scopes += listed
    bad = [s for s in scopes if not _SCOPE_TOKEN.fullmatch(s)]
    if bad:
        raise _Refused(f"scope(s) outside RFC 6749's character set: {bad[:3]!r}")
    return frozenset(scopes)


def _unverified_claims(credential: str) -> dict[str, Any]:
    """The claims as the token states them, signature unchecked: for a log line only."""
    try:
        claims: dict[str, Any] = jwt.decode(credential, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims


def _principal(claims: Mapping[str, Any]) -> Principal:
    # attrs' ``converter=frozenset`` leaves a free type variable in the generated
    # __init__ that mypy cannot solve; the argument is a frozenset[str] all the same.
    return Principal(_subject(claims), _scopes(claims))  # type: ignore[arg-type]


def mint_token(
    subject: str,
    *,
    secret: str | bytes,
    algorithm: str = "HS256",
    scopes: Iterable[str] = (),
    ttl: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> str:
    """A signed token for ``subject`` with ``scope`` (space-separated) and ``exp``.

    For the CLI, development mode and tests; production tokens come from your identity
    provider. ``secret`` is the HMAC secret (or a PEM private key for RS*/ES*).
    """
    if algorithm in _HMAC_MIN_SECRET:
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < _HMAC_MIN_SECRET[algorithm]:
            raise JwtConfigError(
                f"the secret is {len(raw)} bytes; {algorithm} needs at least "
                f"{_HMAC_MIN_SECRET[algorithm]}"
            )
    elif algorithm not in _ASYMMETRIC:
        raise JwtConfigError(f"unsupported JWT algorithm {algorithm!r}")
    scopes = tuple(scopes)
    if bad := [scope for scope in scopes if not _SCOPE_TOKEN.fullmatch(scope)]:
        raise JwtConfigError(
            f"scope(s) {bad!r}: a scope is printable ASCII without spaces, quotes or backslashes"
        )
    if ttl <= timedelta(0):
        raise JwtConfigError("a token's time to live must be positive")
    issued = datetime.now(UTC) if now is None else now
    if issued.tzinfo is None:
        raise JwtConfigError("now must be an aware datetime")
    claims: dict[str, Any] = {
        "sub": subject,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    scope = " ".join(dict.fromkeys(scopes))
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, secret, algorithm=algorithm)
