"""Helpers shared by command modules: config lookup and output formats.

Standard library only at module level (``scanwatch --help`` must stay fast).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

DEFAULT_CONFIG = Path("/etc/scanwatch/config.toml")


def config_path(args: argparse.Namespace) -> Path:
    """`--config PATH`, else `$SCANWATCH_CONFIG`, else /etc/scanwatch/config.toml."""
    given = getattr(args, "config", None)
    if given:
        return Path(given)
    env = os.environ.get("SCANWATCH_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG


def pick_schedules(cfg: Any, name: str | None) -> list[Any]:
    """Every schedule of ``cfg``, or the one named; an unknown name is a usage error."""
    from daemon.errors import UsageError

    if not name:
        return list(cfg.schedules)
    chosen = cfg.schedule(name)
    if chosen is None:
        known = ", ".join(s.name for s in cfg.schedules) or "none configured"
        raise UsageError(f"unknown schedule {name!r} (known: {known})")
    return [chosen]


def add_format(parser: argparse.ArgumentParser, *extra: str) -> None:
    choices = ("table", "json", *extra)
    parser.add_argument(
        "--format",
        choices=choices,
        default="table",
        help=f"output format: {', '.join(choices)} (default: table)",
    )


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]], *,
                indent: str = "", out: TextIO | None = None) -> None:
    """A plain aligned text table on ``out`` (stdout), each line after ``indent``."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    stream = out if out is not None else sys.stdout
    for n, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        print(indent + line, file=stream)
        if n == 0:
            print(indent + "  ".join("-" * w for w in widths), file=stream)
