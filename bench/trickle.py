"""Benchmark: the rescan trickle against Harbor's Scan All after a scanner DB update.

The same simulated registry (``--images`` scanned images, default 20,000; a scanner adapter of
``--workers`` workers at ``--scan-seconds`` a scan: a fixed throughput) is rescanned twice after
the same DB update:

1. by scanwatch's ``db_updated`` lane, runs of an hourly schedule with no ``max_scans`` (the
   budget follows from the registry's limits: ``max_scans_in_flight = workers``, the rate
   limit and the observed scan time), until no report is older than the DB;
2. by Scan All (``POST /system/scanAll/schedule`` Manual): every artifact queued at once.

For each: time to full coverage (every image rescanned after the update, as the simulator
saw it) and the adapter's peak queue (scans waiting for a worker). The trickle keeps the queue
at or below the workers; Scan All queues everything. Then the registry is made too large to
keep up (a 60 s run timeout on a daily schedule): one run, and the coverage it reports is
checked against the simulator's truth.

Reference, measured in the same run: Scan All's time to coverage. Prints trickle / Scan All
time to coverage last (above 1 is expected: the trickle trades speed for a calm adapter, and
must only stay within the DB's update interval).

    .venv/bin/python bench/trickle.py [--images 20000] [--workers 8] [--scan-seconds 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from daemon import log  # noqa: E402
from daemon.config_types import (  # noqa: E402
    Config,
    DaemonConfig,
    RegistryConfig,
    ScheduleConfig,
    Secret,
)
from daemon.scan.run import run_schedule  # noqa: E402
from daemon.sim import SimOptions, start_simulator  # noqa: E402
from daemon.store.db import open_store  # noqa: E402


def now() -> datetime:
    return datetime.now(UTC)


def sim_options(args: Any) -> SimOptions:
    per_repo = 100
    repos = max(1, args.images // per_repo)
    return SimOptions(seed=31, projects=max(1, repos // 10),
                      repositories_per_project=min(10, repos), artifacts_per_repository=per_repo,
                      scanned_share=1.0, index_share=0.0, chart_share=0.0,
                      vulnerabilities_per_artifact=5,
                      scan_seconds=args.scan_seconds, scanner_concurrency=args.workers,
                      job_workers=max(10, args.workers))


def rescanned_since(sim: Any, wall: float) -> tuple[int, int]:
    """(images rescanned after ``wall``, images) as the simulator holds them."""
    with sim.state.lock:
        tops = [a for a in sim.state.inventory.all_artifacts() if a.top_level]
        done = sum(1 for a in tops if a.scan is not None and a.scan.status == "Success"
                   and (a.scan.end_wall or 0) > wall)
    return done, len(tops)


class QueueWatch:
    """Samples the adapter's queue in a thread: the peak of scans waiting for a worker."""

    def __init__(self, sim: Any) -> None:
        self.sim, self.peak, self._stop = sim, 0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sim.control.scanner()["queued"])
            time.sleep(0.01)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.sim.control.scanner()["peak_queued"])


def config(sim: Any, args: Any, schedule: ScheduleConfig, **daemon: Any) -> Config:
    registry = RegistryConfig(name="sim", url=sim.url, username=sim.admin[0],
                              password=Secret(sim.admin[1], "literal"),
                              requests_per_second=args.rps, burst=50, max_concurrent_requests=8,
                              max_scans_in_flight=args.workers, max_retries=5)
    return Config(daemon=DaemonConfig(max_scans_in_flight=args.workers, **daemon),
                  registries=(registry,), schedules=(schedule,))


def prepared(args: Any, tmp: Path, name: str) -> tuple[Any, Any]:
    sim = start_simulator(sim_options(args))
    store = open_store(f"sqlite:///{tmp / (name + '.db')}")
    imports = ScheduleConfig(name="import", cron="0 2 * * *", registries=("sim",), select=())
    asyncio.run(run_schedule(config(sim, args, imports), store, imports, trigger="bench",
                             now_fn=now))
    return sim, store


def trickle(args: Any, tmp: Path) -> tuple[float, int, int]:
    sim, store = prepared(args, tmp, "trickle")
    with sim:
        hourly = ScheduleConfig(name="hourly", cron="0 * * * *", registries=("sim",),
                                select=("db_updated",))
        cfg = config(sim, args, hourly)
        sim.control.db_update(added=0.02, fix_released=0.0)
        wall0 = sim.state.wall()
        sim.control.reset_stats()
        watch = QueueWatch(sim)
        started, runs = time.monotonic(), 0
        while runs < 10:
            result = asyncio.run(run_schedule(cfg, store, hourly, trigger="bench", now_fn=now))
            runs += 1
            reg = result.registries[0]
            print(f"  trickle run {runs}: budget {reg.budget} ({reg.bound_by}), rescanned "
                  f"{reg.triggered}, behind after it {reg.behind_db} of {reg.images}")
            if reg.behind_db == 0:
                break
        took = time.monotonic() - started
        peak = watch.stop()
        done, total = rescanned_since(sim, wall0)
        assert done == total, f"trickle left {total - done} images behind"
    return took, peak, runs


def scan_all(args: Any, tmp: Path) -> tuple[float, int]:
    sim, _store = prepared(args, tmp, "scanall")
    with sim:
        sim.control.db_update(added=0.02, fix_released=0.0)
        wall0 = sim.state.wall()
        sim.control.reset_stats()
        watch = QueueWatch(sim)
        started = time.monotonic()
        httpx.post(f"{sim.url}/api/v2.0/system/scanAll/schedule", auth=sim.admin,
                   json={"schedule": {"type": "Manual"}}, timeout=600).raise_for_status()
        while rescanned_since(sim, wall0)[0] < rescanned_since(sim, wall0)[1]:
            time.sleep(0.2)
        took = time.monotonic() - started
        return took, watch.stop()


def too_large(args: Any, tmp: Path) -> None:
    sim, store = prepared(args, tmp, "toolarge")
    with sim:
        daily = ScheduleConfig(name="daily", cron="0 2 * * *", registries=("sim",),
                               select=("db_updated",))
        cfg = config(sim, args, daily, run_timeout=timedelta(seconds=60))
        sim.control.db_update(added=0.02, fix_released=0.0)
        wall0 = sim.state.wall()
        result = asyncio.run(run_schedule(cfg, store, daily, trigger="bench", now_fn=now))
        reg = result.registries[0]
        done, total = rescanned_since(sim, wall0)
        truth = total - done
        print(f"too large to keep up (daily runs of at most 60 s): budget {reg.budget}, "
              f"behind {reg.behind_db} of {reg.images} (simulator: {truth} of {total}: "
              f"{'true' if reg.behind_db == truth and reg.images == total else 'WRONG'})")
        print(f"  {reg.falling_behind or 'NOT SAID'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--scan-seconds", type=float, default=0.1)
    parser.add_argument("--rps", type=float, default=300.0)
    args = parser.parse_args()
    log.configure("warning")
    with tempfile.TemporaryDirectory() as tmp:
        t_trickle, q_trickle, runs = trickle(args, Path(tmp))
        print(f"trickle: full coverage in {t_trickle:.1f} s over {runs} run(s), adapter queue "
              f"peak {q_trickle} (workers {args.workers}: "
              f"{'within' if q_trickle <= args.workers else 'OVER'})")
        t_all, q_all = scan_all(args, Path(tmp))
        print(f"Scan All: full coverage in {t_all:.1f} s, adapter queue peak {q_all}")
        too_large(args, Path(tmp))
    print(f"ratio (trickle / Scan All, time to full coverage): {t_trickle / t_all:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
