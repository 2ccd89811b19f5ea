"""Benchmark: the event loop's worst latency while a run imports 10,000 reports.

``scanwatch sim serve`` (its own process, so that its work does not share this one's GIL)
serves 10 projects × 10 repositories × 100 artifacts, all scanned, 20 vulnerabilities each.
One ``run_schedule`` imports every report; meanwhile a ticker on the same loop sleeps 10 ms at a
time and records how late each wake-up is (what ``/healthz``, polling of other registries and
the watchdog would wait). Target: worst latency < 100 ms.

Reference, measured in the same run: the longest single database call of the import (timed
around the Store's methods on the database thread), which is how long the loop would have
stood still had that call run on it, as it did before the database thread. Also measured first,
for ``--floor`` seconds: the machine's own floor, the same ticker beside one thread that only
runs Python (the GIL's switch interval and the OS's scheduling of a loaded machine, nothing of
scanwatch): a worst latency near the floor is the machine's, not the import's.

    .venv/bin/python bench/loop.py [--artifacts-per-repository 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon import log  # noqa: E402
from daemon.config_types import Config, RegistryConfig, ScheduleConfig, Secret  # noqa: E402
from daemon.scan.run import run_schedule  # noqa: E402
from daemon.store.db import Store, open_store  # noqa: E402

TICK = 0.010
TIMED = ("record_scans", "record_inventory", "known_reports_among", "scan_records",
         "reconcile_ignores", "resolve_removed")


def time_calls(store: Store, calls: list[float]) -> None:
    """Wrap the Store's import methods so that each call's duration lands in ``calls``."""
    for name in TIMED:
        method: Callable[..., Any] = getattr(store, name)

        def timed(*args: Any, _m: Callable[..., Any] = method, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return _m(*args, **kwargs)
            finally:
                calls.append(time.monotonic() - started)

        setattr(store, name, timed)


async def measure(cfg: Config, store: Store) -> tuple[list[float], Any, float]:
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.monotonic()
            await asyncio.sleep(TICK)
            lags.append(time.monotonic() - before - TICK)

    tick = asyncio.create_task(ticker())
    started = time.monotonic()
    result = await run_schedule(cfg, store, cfg.schedules[0], trigger="bench",
                                now_fn=lambda: datetime.now(UTC))
    wall = time.monotonic() - started
    done.set()
    await tick
    return lags, result, wall


def floor(seconds: float) -> list[float]:
    """The ticker's lags for ``seconds`` beside a thread that only runs Python bytecode."""
    stop = threading.Event()

    def busy() -> None:
        n = 0
        while not stop.is_set():
            for i in range(1000):
                n += i

    async def tick() -> list[float]:
        lags: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            before = time.monotonic()
            await asyncio.sleep(TICK)
            lags.append(time.monotonic() - before - TICK)
        return lags

    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    try:
        return asyncio.run(tick())
    finally:
        stop.set()
        worker.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--repositories-per-project", type=int, default=10)
    parser.add_argument("--artifacts-per-repository", type=int, default=100)
    parser.add_argument("--floor", type=float, default=20.0,
                        help="seconds of the machine's own floor measured first (0: none)")
    args = parser.parse_args()
    log.configure("warning")
    base = floor(args.floor) if args.floor > 0 else []
    sim = subprocess.Popen(
        [sys.executable, "-m", "daemon", "--log-level", "warning", "sim", "serve",
         "--projects", str(args.projects),
         "--repositories-per-project", str(args.repositories_per_project),
         "--artifacts-per-repository", str(args.artifacts_per_repository),
         "--scanned-share", "1", "--index-share", "0", "--chart-share", "0", "--seed", "11"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip()
        user, password = sim.stdout.readline().split()
        registry = RegistryConfig(name="sim", url=url, username=user,
                                  password=Secret(password, "literal"),
                                  requests_per_second=100000, burst=1000,
                                  max_concurrent_requests=8)
        schedule = ScheduleConfig(name="bench", cron="0 2 * * *", registries=("sim",),
                                  select=())
        cfg = Config(registries=(registry,), schedules=(schedule,))
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{Path(tmp) / 'loop.db'}")
            calls: list[float] = []
            time_calls(store, calls)
            try:
                lags, result, wall = asyncio.run(measure(cfg, store))
            finally:
                store.close()
        imported = result.registries[0].imported
        worst, reference = max(lags), max(calls)
        print(f"imported {imported} reports in {wall:.1f}s; {len(lags)} ticks, median lag "
              f"{statistics.median(lags) * 1000:.1f} ms")
        print(f"reference: longest database call {reference * 1000:.0f} ms "
              f"(of {len(calls)} calls)")
        if base:
            print(f"floor: beside a thread running Python, median lag "
                  f"{statistics.median(base) * 1000:.1f} ms, worst {max(base) * 1000:.0f} ms "
                  f"({len(base)} ticks in {args.floor:.0f}s)")
        print(f"event loop worst latency: {worst * 1000:.0f} ms (target < 100 ms), "
              f"×{worst / reference:.2f} of the reference"
              + (f", ×{worst / max(base):.2f} of the floor's worst" if base else ""))
        return 0 if result.ok else 1
    finally:
        sim.terminate()
        sim.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
