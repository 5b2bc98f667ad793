"""``tokenplans dev pay``: complete an order as Razorpay Checkout would, signed for the
offline gateway, or deliver its signed webhook; or complete a Stripe order (a Checkout
Session id, ``cs_...``) by printing the signed event Stripe would send."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from tokenplans_adapters.main.app import offline_payment_secret
from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.main.dev import DEV_FILE, load_dev_secrets
from tokenplans_adapters.razorpay import WEBHOOK_EVENTS, OfflineGateway
from tokenplans_adapters.stripe import WEBHOOK_EVENTS as STRIPE_EVENTS
from tokenplans_adapters.stripe import OfflineStripe

from .base import CommandError, Commands


def add(commands: Commands) -> None:
    parser = commands.add_parser("dev", help="development helpers (offline payments)")
    actions = parser.add_subparsers(dest="dev_command", required=True, metavar="ACTION")
    pay = actions.add_parser(
        "pay",
        help="complete an order as Razorpay Checkout would, with the offline gateway",
        description=(
            "Sign a payment for ORDER_ID with the offline gateway's secret and print the "
            "JSON body for POST /api/payments/verify (pipe it to curl -d @-). With "
            "--webhook EVENT, print a curl command that delivers that signed webhook "
            "instead. Signs for the `tokenplans serve --dev` server of this folder (its "
            f"{DEV_FILE}) when there is one, else for a server running the offline gateway "
            "with this configuration (no Razorpay keys). For a Stripe order (a Checkout "
            "Session id, cs_...; or --provider stripe), print a curl command that delivers "
            "the signed checkout.session.completed event (or --webhook EVENT) to "
            "/api/payments/stripe/webhook: run it within 5 minutes, the signature's tolerance."
        ),
    )
    pay.add_argument("order_id", metavar="ORDER_ID", help="the order_id from /api/payments/order")
    pay.add_argument("--payment-id", help="the Razorpay payment id to sign (default: random)")
    pay.add_argument(
        "--webhook",
        choices=(*WEBHOOK_EVENTS, *STRIPE_EVENTS),
        metavar="EVENT",
        help=(
            f"print a signed webhook delivery instead: one of {', '.join(WEBHOOK_EVENTS)}; "
            f"for Stripe, one of {', '.join(STRIPE_EVENTS)}"
        ),
    )
    pay.add_argument(
        "--provider",
        choices=("razorpay", "stripe"),
        help="the order's provider (default: stripe for a cs_... id, else razorpay)",
    )
    pay.add_argument(
        "--url", help="the server's base URL (default: the dev server's, or http://127.0.0.1:8000)"
    )
    pay.set_defaults(handler=_dev_pay)


def _dev_pay(args: argparse.Namespace, settings: Settings) -> int:
    provider = args.provider or (
        "stripe" if OfflineStripe.is_session_id(args.order_id) else "razorpay"
    )
    webhook_events = STRIPE_EVENTS if provider == "stripe" else WEBHOOK_EVENTS
    if args.webhook is not None and args.webhook not in webhook_events:
        raise CommandError(
            f"{args.webhook} is not a {provider} event: one of {', '.join(webhook_events)}"
        )
    if provider == "stripe":
        return _stripe_pay(args, settings)
    gateway, url = _offline_gateway(settings, webhook=bool(args.webhook))
    payment_id = args.payment_id or gateway.new_payment_id()
    url = (args.url or url).rstrip("/")
    if args.webhook:
        body, headers = gateway.webhook_delivery(
            args.webhook, order_id=args.order_id, payment_id=payment_id
        )
        command = ["curl", "-sS", "-H", "Content-Type: application/json"]
        for name, value in headers.items():  # capitalised as Razorpay's docs write them
            command += ["-H", f"{name.title()}: {value}"]
        command += ["--data-raw", body.decode(), f"{url}/api/payments/webhook"]
        print(shlex.join(command))
        return 0
    verify = gateway.checkout_proof(args.order_id, payment_id)
    print(json.dumps(verify))
    if not sys.stdout.isatty():
        return 0  # piped, as intended: the hint below would only clutter the terminal
    print(
        "POST this to /api/payments/verify with the order owner's token, e.g.\n"
        f"  tokenplans dev pay {shlex.quote(args.order_id)} | curl -H 'Authorization: Bearer "
        f"$TOKEN' -H 'Content-Type: application/json' -d @- {url}/api/payments/verify",
        file=sys.stderr,
    )
    return 0


def _offline_gateway(settings: Settings, *, webhook: bool) -> tuple[OfflineGateway, str]:
    """The gateway ``dev pay`` signs with, and the server's default URL: the development
    server's, from its file, else the one this configuration makes."""
    dev = load_dev_secrets()
    if dev is not None:
        return OfflineGateway(dev.payment_secret), dev.api_url or "http://127.0.0.1:8000"
    if settings.has_razorpay_keys:
        raise CommandError(
            "Razorpay keys are configured: only Razorpay Checkout can sign those payments; "
            "`dev pay` signs for the offline gateway, used when no keys are set"
        )
    secret = offline_payment_secret(settings)
    if secret is None:
        raise CommandError(
            f"no offline payment secret: run this in the folder of `tokenplans serve --dev` "
            f"(it reads {DEV_FILE}), or configure the server's TOKENPLANS_JWT_SECRET or "
            "TOKENPLANS_OFFLINE_PAYMENT_SECRET here too"
        )
    if webhook and not settings.razorpay_webhook_secret:
        raise CommandError(
            "no RAZORPAY_WEBHOOK_SECRET: a server without one refuses every webhook; set the "
            "server's webhook secret here too"
        )
    webhook_secrets = [settings.razorpay_webhook_secret or ""][: int(webhook)]
    gateway = OfflineGateway(secret, webhook_secrets=webhook_secrets)
    return gateway, settings.base_url or "http://127.0.0.1:8000"


def _stripe_pay(args: argparse.Namespace, settings: Settings) -> int:
    """Print a curl command delivering the signed event Stripe would send for the
    session: ``checkout.session.completed`` (paid) unless ``--webhook`` names another."""
    gateway, url = _offline_stripe(settings)
    body, headers = gateway.webhook_delivery(
        args.webhook or STRIPE_EVENTS[0], session_id=args.order_id
    )
    command = ["curl", "-sS", "-H", "Content-Type: application/json"]
    command += ["-H", f"Stripe-Signature: {headers['stripe-signature']}"]
    url = (args.url or url).rstrip("/")
    command += ["--data-raw", body.decode(), f"{url}/api/payments/stripe/webhook"]
    print(shlex.join(command))
    return 0


def _offline_stripe(settings: Settings) -> tuple[OfflineStripe, str]:
    """The offline Stripe stand-in ``dev pay`` signs with, and the server's default URL:
    the development server's, else the one this configuration makes."""
    dev = load_dev_secrets()
    if dev is not None:
        return OfflineStripe(dev.payment_secret), dev.api_url or "http://127.0.0.1:8000"
    if settings.stripe_secret_key:
        raise CommandError(
            "STRIPE_SECRET_KEY is configured: only Stripe can sign those events; `dev pay` "
            "signs for the offline stand-in (TOKENPLANS_STRIPE_OFFLINE)"
        )
    if not (settings.stripe_offline and settings.stripe_webhook_secret):
        raise CommandError(
            f"no offline Stripe: run this in the folder of `tokenplans serve --dev` (it reads "
            f"{DEV_FILE}), or configure the server's TOKENPLANS_STRIPE_OFFLINE=true and "
            "STRIPE_WEBHOOK_SECRET here too"
        )
    gateway = OfflineStripe(settings.stripe_webhook_secret)
    return gateway, settings.base_url or "http://127.0.0.1:8000"
