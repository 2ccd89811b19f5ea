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


def absent_as_null(row: dict[str, Any]) -> dict[str, Any]:
    """A JSON record with its absent values (empty strings) as null, as every command's JSON
    has them (README, "Commands")."""
    return {k: (None if v == "" else v) for k, v in row.items()}


def safe_cell(value: object) -> str:
    """A value as one table cell: ``None`` is empty; control characters (escape sequences from
    scan data among them) are replaced as the alert renderers replace them, line breaks become
    spaces, so nothing in a cell can move the cursor or recolour the terminal."""
    if value is None:
        return ""
    text = str(value)
    if text.isprintable():  # nearly every cell: one pass in C
        return text
    return "".join(c if c.isprintable() else ("\N{REPLACEMENT CHARACTER}" if c not in "\n\t\r"
                                               else " ") for c in text)


def _fit(widths: list[int], budget: int, keep: set[int]) -> list[int]:
    """Shrink the widest column not in ``keep`` (ids are never cut) until the table fits."""
    widths = list(widths)
    while sum(widths) + 2 * (len(widths) - 1) > budget:
        candidates = [i for i in range(len(widths)) if i not in keep and widths[i] > 8]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= sum(widths) + 2 * (len(widths) - 1) - budget
        widths[widest] = max(widths[widest], 8)
    return widths


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table_width(wide: bool = False) -> int | None:
    """The width a table must fit: the terminal's on a TTY, none (no cut) in a pipe or --wide."""
    import shutil

    if wide or not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]], *,
                indent: str = "", out: TextIO | None = None, width: int | None = None,
                total: str = "", empty: str = "") -> None:
    """An aligned text table on ``out`` (stdout), each line after ``indent``.

    Every cell goes through ``safe_cell``. With ``width`` the widest columns are cut (with …)
    to fit, never a column whose header ends in ID or names a vulnerability. ``total`` is a
    line under the table; ``empty`` is said instead of a table without rows.
    """
    stream = out if out is not None else sys.stdout
    body = [[safe_cell(c) for c in r] for r in rows]
    if not body and empty:
        print(indent + empty, file=stream)
        return
    cells = [[str(h) for h in headers]] + body
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if width is not None:
        keep = {i for i, h in enumerate(headers)
                if h.upper().endswith("ID") or "VULNERABILIT" in h.upper()}
        widths = _fit(widths, width - len(indent), keep)
    for n, row in enumerate(cells):
        line = "  ".join(_cut(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        print(indent + line, file=stream)
        if n == 0:
            print(indent + "  ".join("-" * w for w in widths), file=stream)
    if total:
        print(indent + total, file=stream)
