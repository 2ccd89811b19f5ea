"""`scanwatch doctor`: check that each registry and the database are usable, in plain words."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from daemon.commands._common import add_format, print_json
from daemon.commands._harbor import load_config

HELP = ("check the set-up: reach each registry, its credentials, scanner and permissions "
        "(no scan is triggered), and the history database")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("doctor", parents=[common], help=HELP, description=HELP + ".",
                              epilog="Exit 0 when every check passes (warnings, such as a robot "
                                     "expiring within 14 days, do not fail), 1 otherwise.")
    add_format(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from daemon import config
    from daemon.doctor import run_checks

    cfg = load_config(args, sends=True)
    checks = asyncio.run(run_checks(cfg, cfg.daemon.database or config.default_database(),
                                    datetime.now(UTC)))
    failed = [c for c in checks if not c.ok]
    warned = [c for c in checks if c.ok and c.warn]
    if args.format == "json":
        print_json({"ok": not failed, "checks": [
            {"subject": c.subject, "check": c.name, "ok": c.ok, "detail": c.detail,
             "warning": c.warn} for c in checks]})
    else:
        for c in checks:
            mark = "FAIL" if not c.ok else "WARN" if c.warn else "ok  "
            print(f"{mark}  {c.subject}: {c.name}: {c.detail}")
        print(f"{len(checks) - len(failed)} of {len(checks)} checks passed"
              + (f", {len(warned)} with a warning" if warned else ""))
    return 1 if failed else 0
