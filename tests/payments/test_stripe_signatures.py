"""Our Stripe-Signature verifier against Stripe's own SDK (a test-only dependency): what
the SDK signs we accept, and we refuse exactly what ``stripe.Webhook.construct_event``
refuses, on tampered bodies, wrong secrets, stale timestamps and rotated secrets."""

from __future__ import annotations

import time

import pytest
import stripe as stripe_sdk

from tokenplans_adapters.stripe.signatures import verify

SECRET = "whsec_test_current0123456789"
OLD_SECRET = "whsec_test_previous012345678"
BODY = b'{"id":"evt_1","object":"event","type":"checkout.session.completed","data":{}}'


def _header(body: bytes, secret: str, timestamp: int) -> str:
    header: str = stripe_sdk.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=timestamp
    )
    return header


def _sdk_accepts(body: bytes, header: str, secret: str) -> bool:
    try:
        stripe_sdk.Webhook.construct_event(body, header, secret, tolerance=300)
    except stripe_sdk.SignatureVerificationError:
        return False
    return True


def _ours(body: bytes, header: str, secret: str) -> bool:
    return verify((secret.encode(),), body, header, now=time.time())


def _rotated(body: bytes, timestamp: int) -> str:
    """What Stripe sends while a secret is rolled: one v1 per active secret."""
    current = _header(body, SECRET, timestamp)
    previous = _header(body, OLD_SECRET, timestamp).split(",", 1)[1]
    return f"{current},{previous}"


CASES = {
    "genuine": (BODY, lambda t: _header(BODY, SECRET, t), SECRET),
    "tampered body": (BODY.replace(b"evt_1", b"evt_2"), lambda t: _header(BODY, SECRET, t), SECRET),
    "one byte more": (BODY + b"\n", lambda t: _header(BODY, SECRET, t), SECRET),
    "wrong secret": (BODY, lambda t: _header(BODY, "whsec_attacker", t), SECRET),
    "stale timestamp": (BODY, lambda t: _header(BODY, SECRET, t - 301), SECRET),
    "just in time": (BODY, lambda t: _header(BODY, SECRET, t - 240), SECRET),
    "rotated, new secret configured": (BODY, lambda t: _rotated(BODY, t), SECRET),
    "rotated, old secret configured": (BODY, lambda t: _rotated(BODY, t), OLD_SECRET),
    "rotated, neither": (BODY, lambda t: _rotated(BODY, t), "whsec_neither"),
    "timestamp changed": (
        BODY,
        lambda t: _header(BODY, SECRET, t).replace(f"t={t}", f"t={t + 1}"),
        SECRET,
    ),
    "v0 scheme only": (BODY, lambda t: _header(BODY, SECRET, t).replace("v1=", "v0="), SECRET),
    "no timestamp": (BODY, lambda t: _header(BODY, SECRET, t).split(",", 1)[1], SECRET),
    "empty": (BODY, lambda t: "", SECRET),
}


@pytest.mark.parametrize("case", list(CASES))
def test_we_accept_and_refuse_exactly_what_the_sdk_does(case: str) -> None:
    body, make_header, secret = CASES[case]
    header = make_header(int(time.time()))

    assert _ours(body, header, secret) == _sdk_accepts(body, header, secret)


def test_the_sdk_agrees_on_the_genuine_and_rotated_cases() -> None:
    """So the comparison above is not vacuous: some cases are accepted."""
    now = int(time.time())
    for case in (
        "genuine",
        "just in time",
        "rotated, new secret configured",
        "rotated, old secret configured",
    ):
        body, make_header, secret = CASES[case]
        assert _ours(body, make_header(now), secret), case


def test_configured_secrets_are_tried_in_turn() -> None:
    header = _header(BODY, OLD_SECRET, int(time.time()))

    assert verify((SECRET.encode(), OLD_SECRET.encode()), BODY, header, now=time.time())
    assert not verify((SECRET.encode(),), BODY, header, now=time.time())


@pytest.mark.parametrize(
    "header",
    ["t=abc,v1=00", "t=1,v1=" + "zz" * 32, "t=\u00e9,v1=00", "v1=" + "0" * 64, "t=1"],
)
def test_malformed_headers_are_simply_false(header: str) -> None:
    assert verify((SECRET.encode(),), BODY, header, now=time.time()) is False
