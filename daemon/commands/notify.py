"""`scanwatch notify test RECEIVER`: send a real test message to a receiver's every URL."""

from __future__ import annotations

import argparse
from typing import Any

from daemon.commands._store import load_config
from daemon.errors import DeliveryError, UsageError

HELP = "send a test message to a receiver, to check its URLs and credentials"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    group = subparsers.add_parser("notify", parents=[common], help=HELP, description=HELP + ".")
    group.set_defaults(group_parser=group)
    sub = group.add_subparsers(title="subcommands", metavar="SUBCOMMAND")
    test = sub.add_parser(
        "test", parents=[common], help=HELP,
        description="Send a short test message to every URL of RECEIVER (a [[receiver]] name) "
                    "now, without the outbox. Exits 1 with the reason when a URL fails.")
    test.add_argument("receiver", metavar="RECEIVER", help="the [[receiver]] name to test")
    test.set_defaults(handler=run_test)


def run_test(args: argparse.Namespace) -> int:
    import asyncio

    from daemon.alerts.deliver import send_test

    cfg = load_config(args)
    if cfg is None or cfg.receiver(args.receiver) is None:
        known = ", ".join(r.name for r in cfg.receivers) if cfg else ""
        raise UsageError(f"unknown receiver {args.receiver!r}"
                         + (f" (configured: {known})" if known else ""))
    outcomes = asyncio.run(send_test(cfg, args.receiver))
    failed = [(n, o) for n, o in enumerate(outcomes, 1) if not o.ok]
    for n, outcome in enumerate(outcomes, 1):
        print(f"{args.receiver} URL {n}: {'sent' if outcome.ok else 'FAILED: ' + outcome.error}")
    if failed:
        n, outcome = failed[0]
        raise DeliveryError(f"receiver {args.receiver} URL {n}: {outcome.error}")
    return 0
