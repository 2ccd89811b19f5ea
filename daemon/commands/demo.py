"""`scanwatch demo`: a first five minutes with no Harbor, no config and no mail server."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "see what scanwatch does, against a simulated Harbor (no setup needed)"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "demo", parents=[common], help=HELP, description=HELP + ".",
        epilog="It starts the Harbor simulator in-process, runs a first scan cycle, shows each "
               "artifact's status and the first-sight summary, updates the simulated scanner "
               "database and pushes a rebuilt image, runs a second cycle, and prints the "
               "remediation alert as Slack and email receive it; then CISA's KEV catalog "
               "adds a Git CVE two images carry, and it shows the known-exploited alert that "
               "follows without a rescan. It sends nothing anywhere and writes only under "
               "--dir. It needs no configuration file.")
    p.add_argument("--dir", metavar="DIR", default="scanwatch-demo",
                   help="where to write the demo's config, database and alerts "
                        "(default: ./scanwatch-demo)")
    p.set_defaults(handler=run, default_log_level="warning")


def run(args: argparse.Namespace) -> int:
    from daemon.demo import main

    return main(Path(args.dir))
