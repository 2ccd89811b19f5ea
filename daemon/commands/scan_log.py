"""`scanwatch scan-log TARGET`: the Harbor job log of an artifact's last scan."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from daemon.commands._common import add_format, print_json
from daemon.commands._harbor import artifact_name, group_targets, load_config
from daemon.errors import UsageError

HELP = "print the Harbor job log of an artifact's last scan (why it ended in Error)"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "scan-log", parents=[common], help=HELP, description=HELP + ".",
        epilog="TARGET is registry/project/repository:tag or …@digest, naming one artifact. "
               "For an image index Harbor returns every child's log, one after the other.")
    p.add_argument("target", metavar="TARGET", help="registry/project/repository[:tag|@digest]")
    add_format(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    cfg = load_config(args, sends=False)
    grouped = group_targets(cfg, [args.target])
    (name, (target,)), = grouped.items()
    artifact, text = asyncio.run(_fetch(cfg.registry(name), target))
    if args.format == "json":
        overview = artifact.overview
        print_json({"artifact": artifact_name(artifact), "digest": artifact.ref.digest,
                    "status": overview.state.value if overview else None,
                    "report_id": overview.report_id if overview else None, "log": text})
    else:
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return 0


async def _fetch(registry: Any, target: Any) -> tuple[Any, str]:
    from daemon.harbor.client import HarborClient
    from daemon.harbor.targets import resolve

    async with HarborClient(registry) as client:
        system = await client.system_info()  # the credentials check, before anything else
        found = await resolve(client, target, system)
        if not found:
            raise UsageError(f"{target.text}: no artifact matches")
        if len(found) > 1:
            raise UsageError(f"{target.text}: names {len(found)} artifacts; give a tag or digest")
        artifact = found[0]
        overview = artifact.overview
        if overview is None or not overview.report_id:
            raise UsageError(f"{artifact_name(artifact)} has never been scanned: no log")
        ref = artifact.ref
        text = await client.scan_log(ref.project, ref.repository, ref.digest, overview.report_id)
        return artifact, text
