"""Benchmark: three daemons on one PostgreSQL, SIGKILLed and SIGSTOPped at random (issue 19).

The campaign of ``tests/service/test_ha_cluster.py``, longer: three real ``scanwatch run``
processes against three simulators, every kind of schedule and a digest route, ``--blows``
random SIGKILLs and SIGSTOPs over ``--seconds``. Prints the take-over times (from the blow to
the ``lease`` table showing the unit under a new holder and epoch), the alerts lost and sent
twice, runs overlapping and cron minutes not fired.

Reference, measured in the same run: a clean hand-over. One instance gets SIGTERM, releases its
leases, and the time until the others hold them is timed the same way; the ratio says what a
crash costs over a planned stop (the crash waits for the TTL, the stop does not).

    SCANWATCH_TEST_POSTGRES=postgresql+psycopg://root@/postgres?host=/var/run/postgresql \\
        python bench/ha.py --seconds 240 --blows 24
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "service")]

from ha_campaign import Campaign, fresh_database  # noqa: E402


def clean_handover(campaign: Campaign) -> float:
    """SIGTERM the holder of the most units; seconds until others hold all of them."""
    leases = campaign.leases()
    counts: dict[int, int] = {}
    for holder, _ in leases.values():
        pid = campaign.pid_of(holder)
        if pid is not None:
            counts[pid] = counts.get(pid, 0) + 1
    pid = max(counts, key=lambda p: counts[p])
    units = {u: e for u, (h, e) in leases.items() if campaign.pid_of(h) == pid}
    slot, proc = next((i, p) for i, p in campaign.running() if p.proc.pid == pid)
    began = time.monotonic()
    proc.signal(signal.SIGTERM)
    while True:
        seen = campaign.leases()
        if all(seen[u][1] > e and seen[u][0] and campaign.pid_of(seen[u][0]) != pid
               for u, e in units.items()):
            took = time.monotonic() - began
            break
        if time.monotonic() - began > 120:
            raise SystemExit("the clean hand-over did not complete in 120 s")
        time.sleep(0.05)
    proc.wait_exit()
    campaign.start(slot).wait_for_event("daemon_ready")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="chaos duration")
    parser.add_argument("--blows", type=int, default=24, help="SIGKILLs and SIGSTOPs")
    parser.add_argument("--ttl", type=int, default=3, help="[daemon] lease_ttl, seconds")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not os.environ.get("SCANWATCH_TEST_POSTGRES"):
        raise SystemExit("set SCANWATCH_TEST_POSTGRES to an SQLAlchemy URL of a PostgreSQL "
                         "server (see .ci/run)")
    with fresh_database() as url, tempfile.TemporaryDirectory() as tmp:
        campaign = Campaign(Path(tmp), url, ttl=args.ttl, seed=args.seed)
        try:
            campaign.start_all()
            reference = clean_handover(campaign)
            figures = campaign.run(chaos_seconds=args.seconds, blows=args.blows, started=True)
        finally:
            campaign.close()
    kinds = {k: sum(b.kind == k for b in figures.blows) for k in ("kill", "stop")}
    took = figures.takeovers
    print(f"blows: {len(figures.blows)} ({kinds['kill']} SIGKILL, {kinds['stop']} SIGSTOP), "
          f"lease_ttl {args.ttl} s, {len(took)} unit take-overs")
    if took:
        print(f"take-over: p50 {statistics.median(took):.2f} s, p95 {figures.p95():.2f} s, "
              f"max {max(took):.2f} s (bound TTL + TTL/3 = {args.ttl * 4 / 3:.2f} s)")
    print(f"reference, clean hand-over (SIGTERM, leases released): {reference:.2f} s; "
          f"crash p95 / clean = {figures.p95() / max(reference, 1e-3):.1f}x")
    print(f"units never taken over: {figures.lost_units}")
    print(f"alerts: {figures.posts} immediate posts, {len(figures.wanted)} CVEs owed, "
          f"lost {len(figures.missing)}, unexpected {len(figures.unexpected)}, "
          f"duplicates {figures.duplicates} (relay struck {figures.in_flight_allowance} times)")
    print(f"runs overlapping: {len(figures.overlapping_runs)}; cron minutes not fired: "
          f"{sum(len(v) for v in figures.unfired_minutes.values())}; stale writes after a "
          f"SIGSTOP: {len(figures.stale_finishes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
