"""The Razorpay signature verifiers against vectors computed independently of our code.

The vectors below were computed once with OpenSSL (``printf '%s' MESSAGE | openssl dgst
-sha256 -hmac SECRET``) and are hard-coded, so these tests run anywhere;
``test_the_vectors_are_what_openssl_computes`` recomputes them with the ``openssl`` binary
when it is installed, so a typo in a vector cannot go unnoticed.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tokenplans.ports import Confirmation
from tokenplans_adapters.razorpay import (
    EVENT_ID_HEADER,
    WEBHOOK_EVENTS,
    OfflineGateway,
    RazorpayGateway,
)

KEY_SECRET = "EnLs21M47BllR3X8PSFtjtbd"
ORDER_ID = "order_IluGWxBm9U8zJ8"
PAYMENT_ID = "pay_IH4NVgf4Dreq1l"
PAYMENT_SIGNATURE = "c7a6b6e37e5fb8b5387cd93cff2f9cedbf5cb78112fd50292c56b4cecb49b80d"

WEBHOOK_BODY = b'{"entity":"event","event":"payment.captured"}'
CURRENT_WEBHOOK_SECRET = "webhook-secret-current"
PREVIOUS_WEBHOOK_SECRET = "webhook-secret-previous"
CURRENT_SIGNATURE = "f9edfaec392898259c7bdb18cc69dbb3cf385c072042550ec1b9558f4e8a2b45"
PREVIOUS_SIGNATURE = "fc9fbeeeeada2bfe8b35efb231322c63a1a35bf2c97aa810d71c5abdc0ec70d5"

VECTORS = [
    (KEY_SECRET, f"{ORDER_ID}|{PAYMENT_ID}".encode(), PAYMENT_SIGNATURE),
    (CURRENT_WEBHOOK_SECRET, WEBHOOK_BODY, CURRENT_SIGNATURE),
    (PREVIOUS_WEBHOOK_SECRET, WEBHOOK_BODY, PREVIOUS_SIGNATURE),
]


@pytest.fixture
def razorpay() -> object:
    # Never contacted: verifying signatures makes no request.
    with RazorpayGateway(
        "rzp_test_1DP5mmOlF5G5ag",
        KEY_SECRET,
        [CURRENT_WEBHOOK_SECRET, PREVIOUS_WEBHOOK_SECRET],
        api_url="http://127.0.0.1:9",
    ) as gateway:
        yield gateway


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl binary is not installed")
@pytest.mark.parametrize(("secret", "message", "signature"), VECTORS)
def test_the_vectors_are_what_openssl_computes(secret: str, message: bytes, signature: str) -> None:
    computed = subprocess.run(  # noqa: S603 - fixed argv, test data only
        ["openssl", "dgst", "-sha256", "-hmac", secret],  # noqa: S607 - found on PATH
        input=message,
        capture_output=True,
        check=True,
    ).stdout.decode()

    assert computed.strip().rsplit("= ", 1)[-1] == signature


def test_a_payment_signed_by_razorpay_verifies(razorpay: RazorpayGateway) -> None:
    assert razorpay.verify_payment(
        order_id=ORDER_ID, payment_id=PAYMENT_ID, signature=PAYMENT_SIGNATURE
    )


@pytest.mark.parametrize(
    ("order_id", "payment_id", "signature"),
    [
        pytest.param(ORDER_ID + "x", PAYMENT_ID, PAYMENT_SIGNATURE, id="tampered order id"),
        pytest.param(ORDER_ID, "pay_IH4NVgf4Dreq1m", PAYMENT_SIGNATURE, id="tampered payment id"),
        pytest.param(ORDER_ID, PAYMENT_ID, PAYMENT_SIGNATURE[:-1] + "e", id="tampered signature"),
        pytest.param("order_IluGWxBm9U8zJ9", PAYMENT_ID, PAYMENT_SIGNATURE, id="another order"),
        pytest.param(PAYMENT_ID, ORDER_ID, PAYMENT_SIGNATURE, id="ids swapped"),
        pytest.param(ORDER_ID, PAYMENT_ID, "", id="empty"),
        pytest.param(ORDER_ID, PAYMENT_ID, "g" * 64, id="non-hex"),
        pytest.param(ORDER_ID, PAYMENT_ID, "é" * 64, id="non-ascii"),
        pytest.param(ORDER_ID, PAYMENT_ID, "٣" * 64, id="non-ascii digits"),
        pytest.param(ORDER_ID, PAYMENT_ID, PAYMENT_SIGNATURE[:62], id="truncated"),
        pytest.param(ORDER_ID, PAYMENT_ID, PAYMENT_SIGNATURE + "00", id="extended"),
        pytest.param(ORDER_ID, PAYMENT_ID, " " + PAYMENT_SIGNATURE[1:], id="leading space"),
        pytest.param(ORDER_ID, PAYMENT_ID, "c7 a6" + PAYMENT_SIGNATURE[4:], id="inner space"),
        pytest.param(ORDER_ID, PAYMENT_ID, None, id="none"),
        pytest.param(ORDER_ID, PAYMENT_ID, 12345, id="a number"),
        pytest.param(None, PAYMENT_ID, PAYMENT_SIGNATURE, id="no order id"),
    ],
)
def test_a_payment_signature_that_does_not_match_is_false_never_an_error(
    razorpay: RazorpayGateway, order_id: str, payment_id: str, signature: str
) -> None:
    assert (
        razorpay.verify_payment(order_id=order_id, payment_id=payment_id, signature=signature)
        is False
    )


def test_the_payment_signature_is_checked_with_the_key_secret_not_a_webhook_secret() -> None:
    with RazorpayGateway(
        "rzp_test_x", CURRENT_WEBHOOK_SECRET, [KEY_SECRET], api_url="http://127.0.0.1:9"
    ) as swapped:
        assert not swapped.verify_payment(
            order_id=ORDER_ID, payment_id=PAYMENT_ID, signature=PAYMENT_SIGNATURE
        )
        assert not swapped.verify_webhook(body=WEBHOOK_BODY, signature=CURRENT_SIGNATURE)


def test_an_uppercase_hex_signature_is_the_same_signature(razorpay: RazorpayGateway) -> None:
    assert razorpay.verify_payment(
        order_id=ORDER_ID, payment_id=PAYMENT_ID, signature=PAYMENT_SIGNATURE.upper()
    )


def test_a_webhook_signed_with_the_current_secret_verifies(razorpay: RazorpayGateway) -> None:
    assert razorpay.verify_webhook(body=WEBHOOK_BODY, signature=CURRENT_SIGNATURE)


def test_a_webhook_signed_with_the_previous_secret_verifies_during_rotation(
    razorpay: RazorpayGateway,
) -> None:
    assert razorpay.verify_webhook(body=WEBHOOK_BODY, signature=PREVIOUS_SIGNATURE)


def test_once_the_previous_secret_is_dropped_its_signatures_are_refused() -> None:
    with RazorpayGateway(
        "rzp_test_x", KEY_SECRET, [CURRENT_WEBHOOK_SECRET], api_url="http://127.0.0.1:9"
    ) as rotated:
        assert not rotated.verify_webhook(body=WEBHOOK_BODY, signature=PREVIOUS_SIGNATURE)
        assert rotated.verify_webhook(body=WEBHOOK_BODY, signature=CURRENT_SIGNATURE)


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        pytest.param(
            json.dumps(json.loads(WEBHOOK_BODY)).encode(), CURRENT_SIGNATURE, id="re-serialised"
        ),
        pytest.param(WEBHOOK_BODY + b"\n", CURRENT_SIGNATURE, id="extra newline"),
        pytest.param(WEBHOOK_BODY, "", id="empty signature"),
        pytest.param(WEBHOOK_BODY, "é" * 64, id="non-ascii signature"),
        pytest.param(WEBHOOK_BODY, PAYMENT_SIGNATURE, id="another message's signature"),
        pytest.param(WEBHOOK_BODY.decode(), CURRENT_SIGNATURE, id="body as text, not bytes"),
        pytest.param(b"", CURRENT_SIGNATURE, id="empty body"),
    ],
)
def test_a_webhook_whose_bytes_or_signature_differ_is_refused(
    razorpay: RazorpayGateway, body: bytes, signature: str
) -> None:
    assert razorpay.verify_webhook(body=body, signature=signature) is False


def test_without_a_webhook_secret_every_webhook_is_refused() -> None:
    with RazorpayGateway("rzp_test_x", KEY_SECRET, api_url="http://127.0.0.1:9") as gateway:
        assert not gateway.verify_webhook(body=WEBHOOK_BODY, signature=CURRENT_SIGNATURE)


@pytest.mark.parametrize(
    ("key_id", "key_secret", "webhook_secrets"),
    [
        pytest.param("rzp_test_x", "", [], id="empty key secret"),
        pytest.param("rzp_test_x", b"", [], id="empty key secret bytes"),
        pytest.param("rzp_test_x", KEY_SECRET, [""], id="empty webhook secret"),
        pytest.param("rzp_test_x", KEY_SECRET, [CURRENT_WEBHOOK_SECRET, ""], id="empty previous"),
        pytest.param("", KEY_SECRET, [], id="empty key id"),
    ],
)
def test_an_empty_secret_is_refused_at_construction(
    key_id: str, key_secret: str, webhook_secrets: list[str]
) -> None:
    with pytest.raises(ValueError, match="must"):
        RazorpayGateway(key_id, key_secret, webhook_secrets)


def test_one_webhook_secret_given_as_a_bare_string_is_refused() -> None:
    # A str is a sequence of one-character secrets: a silent, dangerous misreading.
    with pytest.raises(TypeError):
        RazorpayGateway("rzp_test_x", KEY_SECRET, CURRENT_WEBHOOK_SECRET)


def test_the_offline_gateway_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="must"):
        OfflineGateway("")


def test_the_offline_gateway_signs_exactly_as_razorpay_does() -> None:
    offline = OfflineGateway(KEY_SECRET)

    assert offline.sign_payment(ORDER_ID, PAYMENT_ID) == PAYMENT_SIGNATURE
    assert offline.verify_payment(
        order_id=ORDER_ID, payment_id=PAYMENT_ID, signature=PAYMENT_SIGNATURE
    )
    assert OfflineGateway(CURRENT_WEBHOOK_SECRET).sign_webhook(WEBHOOK_BODY) == CURRENT_SIGNATURE


@pytest.mark.parametrize("event", WEBHOOK_EVENTS)
def test_what_the_offline_gateway_forges_its_own_verifiers_accept(event: str) -> None:
    offline = OfflineGateway("s", webhook_secrets=["w"])

    confirmation = offline.read_confirmation(offline.checkout_proof(ORDER_ID, PAYMENT_ID))
    body, headers = offline.webhook_delivery(event, order_id=ORDER_ID, payment_id=PAYMENT_ID)
    delivered = offline.read_webhook(body=body, headers=headers)

    assert confirmation == Confirmation(ORDER_ID, PAYMENT_ID, authentic=True)
    assert (delivered.order_id, delivered.name) == (ORDER_ID, event)
    assert json.loads(body)["payload"]["payment"]["entity"]["id"] == PAYMENT_ID
    assert headers[EVENT_ID_HEADER].startswith("evt_")


def test_the_offline_gateway_makes_razorpay_shaped_unique_order_ids() -> None:
    offline = OfflineGateway("s")
    ids = {
        offline.create_order(amount=9900, currency="INR", receipt="tp_1", notes={})
        for _ in range(100)
    }

    assert len(ids) == 100
    assert all(i.startswith("order_") and i.removeprefix("order_").isalnum() for i in ids)
    assert {len(i) for i in ids} == {20}


def test_the_gateway_repr_never_shows_a_secret(razorpay: RazorpayGateway) -> None:
    assert KEY_SECRET not in repr(razorpay)
    assert CURRENT_WEBHOOK_SECRET not in repr(razorpay)
