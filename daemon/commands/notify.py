"""`scanwatch notify test RECEIVER`: send a real test message to a receiver's every URL."""

from __future__ import annotations

import argparse
from typing import Any

from daemon.commands._common import add_format, print_json
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
                    "now, without the outbox. Exits 1 with the reason when a URL fails. "
                    "--format json prints {receiver, ok, error, urls} (urls: how many were "
                    "tried; error: the first failure, or null).")
    test.add_argument("receiver", metavar="RECEIVER", help="the [[receiver]] name to test")
    add_format(test)
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
    if args.format == "json":
        print_json({"receiver": args.receiver, "ok": not failed,
                    "error": f"URL {failed[0][0]}: {failed[0][1].error}" if failed else None,
                    "urls": len(outcomes)})
    else:
        for n, outcome in enumerate(outcomes, 1):
            state = "sent" if outcome.ok else "FAILED: " + outcome.error
            print(f"{args.receiver} URL {n}: {state}")
    if failed:
        n, outcome = failed[0]
        raise DeliveryError(f"receiver {args.receiver} URL {n}: {outcome.error}")
    return 0
