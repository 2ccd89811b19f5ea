"""`scanwatch vex export`: the decisions in force ([[ignore]] rules and [[vex]] statements) as
one OpenVEX document, for Trivy (`--vex`) or Grype (`--vex`) to read."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "write the ignore rules and VEX statements in force as an OpenVEX document"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "vex", parents=[common], help=HELP, description=HELP + ".",
        epilog="The document holds one not_affected statement per [[ignore]] rule (its reason "
        "as the impact statement) and every statement of the [[vex]] sources; a [[vex]] "
        "source pointing at the file it wrote reads it back unchanged.")
    p.add_argument("action", choices=("export",), help="export")
    p.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    p.add_argument("--author", default="scanwatch", help="the document's author")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uuid
    from pathlib import Path

    from daemon import config
    from daemon.commands._common import config_path
    from daemon.intel import vex
    from daemon.intel.vex_rules import vex_rules
    from daemon.service.daemon import utcnow
    from daemon.store.db import open_configured_store

    cfg = config.load(config_path(args), strict=False)
    rules: tuple[vex.VexRule, ...] = ()
    if cfg.vex:
        store = open_configured_store(cfg)
        try:
            rules = vex_rules(store.engine, cfg)
        finally:
            store.close()
    now = utcnow()
    active = [r for r in cfg.ignores if r.expires >= now.date()]
    doc = vex.export(active, rules, author=args.author, now=now,
                     doc_id=f"https://scanwatch.invalid/vex/{uuid.uuid4()}")
    text = vex.dumps(doc)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {len(doc['statements'])} statement(s) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
