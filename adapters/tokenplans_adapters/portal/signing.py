"""Signed, expiring tokens for the usage page: the portal link and the session cookie.

A token is ``base64url(JSON payload) "." base64url(HMAC-SHA256)``, keyed by a key
derived from the server's portal secret and the token's *purpose* (``link`` or
``session``), so a link can never be used as a session cookie or the other way round.
The payload names the subject and an expiry (``exp``, seconds since the epoch); a
session also carries its CSRF token. Standard library only; docs: usage-page.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

Purpose = Literal["link", "session"]
#: The most characters a token may have before it is even looked at.
MAX_TOKEN_CHARS = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@attrs.frozen
class Session:
    """Who a valid session cookie (or link) is for, until when, and its CSRF token."""

    subject: str
    expires_at: datetime
    csrf: str = ""


class Signer:
    """Signs and checks portal tokens with keys derived from ``secret``."""

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(raw) < 32:  # noqa: PLR2004 - the same floor as every other secret here
            raise ValueError("the portal secret must be at least 32 bytes")
        self._keys = {
            purpose: hmac.new(raw, f"tokenplans portal {purpose}".encode(), hashlib.sha256).digest()
            for purpose in ("link", "session")
        }

    def sign(self, purpose: Purpose, subject: str, expires_at: datetime, csrf: str = "") -> str:
        payload: dict[str, Any] = {"sub": subject, "exp": int(expires_at.timestamp())}
        if csrf:
            payload["csrf"] = csrf
        body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
        return f"{body}.{self._mac(purpose, body)}"

    def new_session(self, subject: str, expires_at: datetime) -> tuple[str, Session]:
        """A fresh session for ``subject``: its cookie value and what it says."""
        session = Session(subject, expires_at, secrets.token_urlsafe(24))
        return self.sign("session", subject, expires_at, session.csrf), session

    def check(self, purpose: Purpose, token: str | None, now: datetime) -> Session | None:
        """What ``token`` says when it is authentic, of ``purpose`` and not expired at
        ``now``; else ``None`` (every cause alike)."""
        if (
            not token
            or len(token) > MAX_TOKEN_CHARS
            or not token.isascii()
            or token.count(".") != 1
        ):
            return None
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        session = _session_of(body)
        return None if session is None or now >= session.expires_at else session

    def _mac(self, purpose: Purpose, body: str) -> str:
        return _b64(hmac.new(self._keys[purpose], body.encode("ascii"), hashlib.sha256).digest())


def _session_of(body: str) -> Session | None:
    """The session a signed payload describes (we wrote it: anything else is ``None``)."""
    try:
        payload = json.loads(_unb64(body))
        subject, expiry = payload["sub"], payload["exp"]
        csrf = payload.get("csrf", "")
    except (ValueError, binascii.Error, KeyError, TypeError, AttributeError):
        return None
    if not (isinstance(subject, str) and isinstance(expiry, int) and isinstance(csrf, str)):
        return None
    return Session(subject, datetime.fromtimestamp(expiry, UTC), csrf)
