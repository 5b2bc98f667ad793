"""``tokenplans events deliver [--once]``: deliver the outbox's webhooks outside a server
(docs/events.md)."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.main.engines import open_engine
from tokenplans_adapters.sql import SqlAccountStore
from tokenplans_adapters.webhooks import DeliveryWorker

from .base import Commands


def add(commands: Commands) -> None:
    parser = commands.add_parser("events", help="outbound events and webhooks")
    actions = parser.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    deliver = actions.add_parser(
        "deliver",
        help="deliver webhooks until stopped (or once)",
        description=(
            "Claim due webhook deliveries from the database and send them, until "
            "interrupted. Any number of these (and of servers' own workers) may run "
            "against one database: each delivery is claimed by one at a time."
        ),
    )
    deliver.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    deliver.set_defaults(handler=_deliver)


def _deliver(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_engine(settings)
    worker = DeliveryWorker(SqlAccountStore(engine), settings.delivery)
    try:
        if args.once:
            sent = worker.run_until_idle()
            print(f"delivered {worker.outcomes} ({sent} claimed)")
            return 0
        stopped = threading.Event()

        def stop(_signum: int, _frame: FrameType | None) -> None:
            stopped.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        worker.start()
        stopped.wait()
        return 0
    finally:
        worker.stop()
        engine.dispose()
