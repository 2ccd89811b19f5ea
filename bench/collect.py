"""Benchmark: API calls of a full first run and of an immediate second run, against the minimum.

A simulated Harbor v2.14 of 10,000 artifacts (half of them already scanned). The schedule selects
no lane that triggers scans (``select = []``): the run walks the registry and imports every
report Harbor already has, which is the collect path this benchmark measures. The minimum a
client could make for the same result comes from ``/_sim/inventory``: one ``/systeminfo``, one
call per page of projects, for each non-empty project one call for its scanner and one per page
of its artifacts, one metadata call per distinct scanner, plus one report fetch per scanned
artifact on the first run (none on the second), and for lineage per scanned image its manifest
(``/v2/``) and build history, one pull token per repository and the one 401 naming the realm.
An image index is not an image: each of its children is (by its digest), the index's own
manifest is never needed (the listing's references name the children and their platforms). The
base images are multi-arch (two platforms), so bases are indexes too.

Targets: ratio ≤ 1.05 on both runs; with the rate limit the bottleneck, the second run's
requests span (first to last, as the simulator records them) within 1.15 × (calls − burst) ÷
requests_per_second. The second run goes at ``--second-rps`` so that the limit is the bottleneck
(the simulator serves ~80 listing pages a second here).

A third run is a rate-limited rescan (issue #20): after a scanner DB update, ``--rescans``
images of the ``db_updated`` lane at ``--rescan-rps`` with 8 scans in flight, so that the rate
limit, not the adapter, is the bottleneck; its requests span must stay within 1.15 × (calls −
burst) ÷ requests_per_second (it was 1.55-1.63× when polls waited a fixed interval and report
fetches held up the next triggers). Prints the worse call ratio, then the rescan's span ratio,
last.

    .venv/bin/python bench/collect.py [--artifacts-per-repository 100] [--rps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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

PAGE = 100


def pages(n: int) -> int:
    return -(-n // PAGE)


def minimum(inventory: dict[str, Any], first: bool, images: list[dict[str, Any]]) -> int:
    # /systeminfo, the project pages, and the metadata of the one scanner
    calls = 1 + pages(inventory["projects"]) + 1
    for project in inventory["per_project"].values():
        if project["repositories"] > 0:
            calls += 1 + pages(project["artifacts"])
    if first:
        calls += inventory["scanned"]
        # lineage: per scanned image (each child of an index) a manifest and its build
        # history, a pull token per repository holding one, and the one 401 naming the realm
        scanned = [i for i in images if i["scanned"]]
        calls += 2 * len(scanned) + len({i["repository"] for i in scanned}) + (1 if scanned
                                                                                else 0)
    return calls


async def one_run(cfg: Config, store: Any) -> Any:
    return await run_schedule(cfg, store, cfg.schedules[0], trigger="bench",
                              now_fn=lambda: datetime.now(UTC))


def rescan_run(sim: Any, store: Any, registry: RegistryConfig, args: Any) -> float:
    """A rate-limited rescan of ``args.rescans`` images after a DB update: span / floor."""
    sim.control.db_update(added=0.05, fix_released=0.0)
    schedule = ScheduleConfig(name="rescan", cron="0 2 * * *", registries=("sim",),
                              select=("db_updated",), max_scans=args.rescans)
    rps = args.rescan_rps
    cfg = Config(daemon=DaemonConfig(max_scans_in_flight=50),
                 registries=(replace(registry, requests_per_second=rps,
                                     max_scans_in_flight=8),), schedules=(schedule,))
    sim.control.reset_stats()
    result = asyncio.run(one_run(cfg, store))
    stats = sim.control.stats()
    calls = stats["total"]
    span = (stats["last_request_at"] or 0) - (stats["first_request_at"] or 0)
    floor = max(0, calls - args.burst) / rps
    print(f"rescan run: {result.registries[0].triggered} rescans, {calls} calls at {rps:g} "
          f"req/s, requests span {span:.1f}s against a floor of {floor:.1f}s "
          f"(ratio {span / floor:.3f})")
    return span / floor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--repositories-per-project", type=int, default=10)
    parser.add_argument("--artifacts-per-repository", type=int, default=100)
    parser.add_argument("--rps", type=float, default=200.0)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--second-rps", type=float, default=30.0,
                        help="rate for the second run, low enough to be the bottleneck")
    parser.add_argument("--rescans", type=int, default=300)
    parser.add_argument("--rescan-rps", type=float, default=20.0)
    args = parser.parse_args()
    log.configure("warning")
    options = SimOptions(seed=11, projects=args.projects,
                         repositories_per_project=args.repositories_per_project,
                         artifacts_per_repository=args.artifacts_per_repository,
                         scanned_share=0.5, index_share=0.1, chart_share=0.05,
                         vulnerabilities_per_artifact=20, harbor_version="v2.14.0",
                         base_images=2, base_platforms=2,
                         scan_seconds=0.1, scanner_concurrency=4)
    t0 = time.monotonic()
    sim = start_simulator(options)
    print(f"simulator ready in {time.monotonic() - t0:.1f}s: {sim.control.inventory()['artifacts']}"
          f" artifacts")
    registry = RegistryConfig(name="sim", url=sim.url, username=sim.admin[0],
                              password=Secret(sim.admin[1], "literal"),
                              requests_per_second=args.rps, burst=args.burst,
                              max_concurrent_requests=8, max_retries=5)
    schedule = ScheduleConfig(name="bench", cron="0 2 * * *", registries=("sim",), select=())
    cfg = Config(registries=(registry,), schedules=(schedule,))
    slow = Config(registries=(replace(registry, requests_per_second=args.second_rps),),
                  schedules=(schedule,))
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, sim:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        inventory = sim.control.inventory()
        images = sim.control.lineage()
        for label, first, run_cfg in (("first run", True, cfg), ("second run", False, slow)):
            rps = run_cfg.registries[0].requests_per_second
            sim.control.reset_stats()
            started = time.monotonic()
            result = asyncio.run(one_run(run_cfg, store))
            wall = time.monotonic() - started
            stats = sim.control.stats()
            calls = stats["total"]
            least = minimum(inventory, first, images)
            ratio = calls / least
            ratios.append(ratio)
            span = (stats["last_request_at"] or 0) - (stats["first_request_at"] or 0)
            bound = 1.15 * max(0, calls - args.burst) / rps
            reg = result.registries[0]
            print(f"{label}: {calls} calls (minimum {least}, ratio {ratio:.3f}), "
                  f"imported {reg.imported}, triggered {reg.triggered}, wall {wall:.1f}s, "
                  f"requests span {span:.2f}s (rate-limit bound {bound:.2f}s: "
                  f"{'within' if span <= bound else 'OVER'}), "
                  f"max in 1 s {stats['max_requests_in_1s']} (limit {rps + args.burst:g})")
            if not result.ok:
                print(f"  run failed: {[r.error for r in result.failed]}")
        span_ratio = rescan_run(sim, store, registry, args)
    print(f"ratio (calls / minimum, worse run): {max(ratios):.3f}")
    print(f"ratio (rescan span / rate-limit floor): {span_ratio:.3f} (target <= 1.15)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
