"""The live progress of `run --once` and `scan --wait`: one display, drawn with ``rich``.

On a terminal (stderr a TTY) the display is redrawn in place: one line per registry (walked,
artifacts seen, reports imported, scans selected) and, below, the scans: a bar with done n/N,
how many run and wait, and an ETA (rich's own estimate from the pace so far). Log lines never
cut through it: while it runs they are printed above it through rich's console, and at the
default level (no ``--log-level`` given) only warnings and errors show. Off a terminal nothing
is redrawn: a plain line at most once a minute (``interval``), on stderr.

Why rich: it is the usual, well-kept choice for this (Live regions, log lines above them,
terminal width, ETA from a speed estimate), and nothing hand-written redraws as safely.
The display only reads: it is the run's ``on_progress`` watcher (a Job per change, and the
run's stages through ``stage``, see ``daemon.scan.watch``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class RegistryLine:
    name: str
    stage: str = "waiting"
    artifacts: int | None = None
    imported: int | None = None
    selected: int | None = None

    def text(self) -> str:
        parts = [f"{self.name}:"]
        if self.artifacts is None:
            parts.append("walking…" if self.stage == "walking" else "logging in…")
        else:
            parts.append(f"walked, {self.artifacts} artifacts seen")
        if self.imported is not None:
            parts.append(f"{self.imported} reports imported")
        if self.selected is not None:
            parts.append(f"{self.selected} scans selected")
        return f"{parts[0]} {', '.join(parts[1:])}"


@dataclass
class Counts:
    total: int = 0
    queued: int = 0
    running: int = 0
    done: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class RunDisplay:
    """The run's watcher and its display. Use as a context manager around the run."""

    def __init__(
        self,
        *,
        live: bool,
        quiet_logs: bool,
        stream: TextIO | None = None,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        rows: Callable[[Any], tuple[str, str, str]] | None = None,
    ) -> None:
        self.live = live
        self.quiet_logs = quiet_logs
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.clock = clock
        self.rows = rows  # with it, one line per artifact too (scan --wait)
        self.registries: dict[str, RegistryLine] = {}
        self.jobs: dict[str, Any] = {}
        self.expected = 0  # scans the stages announced (selected), before their jobs exist
        self._last_line = clock()
        self._live: Any = None
        self._bar: Any = None
        self._task: Any = None
        self._swapped: list[tuple[logging.StreamHandler[Any], Any, int]] = []

    # -- the watcher ---------------------------------------------------------------------------

    def stage(self, registry: str, stage: str, count: int = 0) -> None:
        line = self.registries.setdefault(registry, RegistryLine(registry))
        line.stage = stage
        if stage == "walked":
            line.artifacts = count
        elif stage == "imported":
            line.imported = count
        elif stage == "selected":
            line.selected = count
            self.expected += count
        self._changed()

    def __call__(self, job: Any) -> None:
        ref = job.artifact.ref
        self.jobs[f"{ref.registry}/{ref.project}/{ref.repository}@{ref.digest}"] = job
        self._changed()

    def counts(self) -> Counts:
        counts = Counts()
        for job in self.jobs.values():
            if job.outcome:
                counts.done += 1
                counts.outcomes[job.outcome] = counts.outcomes.get(job.outcome, 0) + 1
            elif job.ours or job.artifact.overview is not None:
                counts.running += 1
            else:
                counts.queued += 1
        counts.total = max(self.expected, len(self.jobs))
        counts.queued += counts.total - len(self.jobs)
        return counts

    def plain_line(self) -> str:
        """The one line written off a terminal (and the text of the display's scan line)."""
        c = self.counts()
        walked = sum(1 for r in self.registries.values() if r.artifacts is not None)
        parts = []
        if self.registries:
            artifacts = sum(r.artifacts or 0 for r in self.registries.values())
            imported = sum(r.imported or 0 for r in self.registries.values())
            parts.append(f"registries {walked}/{len(self.registries)} walked, "
                         f"{artifacts} artifacts seen, {imported} reports imported")
        parts.append(f"scans {c.done}/{c.total} done, {c.running} running, {c.queued} queued")
        return "progress: " + "; ".join(parts)

    # -- drawing -------------------------------------------------------------------------------

    def _changed(self) -> None:
        if self.live and self._bar is not None:
            c = self.counts()
            self._bar.update(self._task, total=c.total or None, completed=c.done,
                             running=c.running, queued=c.queued)
        elif not self.live and self.clock() - self._last_line >= self.interval:
            self._last_line = self.clock()
            print(f"scanwatch: {self.plain_line()}", file=self.stream, flush=True)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        parts: list[Any] = [Text(r.text(), overflow="ellipsis", no_wrap=True)
                            for r in self.registries.values()]
        if self.rows is not None and self.jobs:
            table = Table.grid(padding=(0, 2))
            for _ in range(3):
                table.add_column(overflow="ellipsis", no_wrap=True)
            for job in list(self.jobs.values())[-20:]:
                table.add_row(*(Text(cell) for cell in self.rows(job)))
            parts.append(table)
        parts.append(self._bar.make_tasks_table(self._bar.tasks))
        return Group(*parts)

    def __enter__(self) -> RunDisplay:
        if not self.live:
            return self
        from rich.console import Console
        from rich.file_proxy import FileProxy
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        self._bar = Progress(
            TextColumn("scans"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[running]} running, {task.fields[queued]} queued"),
            TextColumn("ETA"), TimeRemainingColumn(),
            console=console)
        self._task = self._bar.add_task("scans", total=None, running=0, queued=0)
        # With a line per artifact (scan --wait) the display goes when done: the command then
        # prints its results table on stdout, which stays what a script or a pager reads.
        self._live = Live(console=console, get_renderable=self._render, refresh_per_second=4,
                          transient=self.rows is not None,
                          redirect_stdout=False, redirect_stderr=False)
        self._live.start()
        # Log lines go above the display (through its console), never through it.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                self._swapped.append((handler, handler.stream, handler.level))
                handler.setStream(FileProxy(console, self.stream))
                if self.quiet_logs:
                    handler.setLevel(logging.WARNING)
        self._changed()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._changed()
            self._live.refresh()
            self._live.stop()
            for handler, stream, level in self._swapped:
                handler.setStream(stream)
                handler.setLevel(level)
            self._swapped.clear()
            self._live = None


def wanted(args: Any, *, stream: TextIO | None = None) -> bool:
    """A live display: the table format on a terminal."""
    out = stream if stream is not None else sys.stderr
    return getattr(args, "format", "table") == "table" and out.isatty()
