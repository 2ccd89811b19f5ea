"""Benchmark: scanwatch against a registry of 100,000 artifacts (issue 11's table).

The simulator serves 20 projects × 50 repositories × 100 artifacts (``--scale`` multiplies the
artifacts per repository: ``--scale 0.1`` is a quick 10,000), 95% already scanned, 20
vulnerabilities each, the rate limit lifted so that the client's own cost shows. Steps, each a
real ``scanwatch`` subprocess whose peak RSS is read the ``/usr/bin/time`` way (``wait4``'s
``ru_maxrss`` of that child):

1. ``run --once`` first import (builds the database), then an unchanged rerun;
2. each query of the table, ``--runs`` times (median printed): the first screen of
   ``findings``, the full ``findings`` listing (table and ``--format json``),
   ``findings --fixable --severity Critical``, ``findings --by action``, ``alerts preview
   --since 7d``, ``history REPO``, ``status PROJECT``.

Reference, measured in the same run: a bare ``sqlite3`` scan of the same rows (every open
finding joined to its repository and registry, each row fetched in Python). Each line prints the
figure, its target and the ratio to that reference. ``--database FILE`` reuses a database a
previous run prepared (``--keep DIR`` keeps one): the import steps are skipped then.

    .venv/bin/python bench/scale.py [--scale 1.0] [--runs 3] [--keep DIR | --database FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon import log  # noqa: E402
from daemon.sim import SimOptions, Simulator, start_simulator  # noqa: E402

SCANWATCH = [sys.executable, "-m", "daemon"]
MB = 1024 * 1024


def measure(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float, int, int, float]:
    """(seconds, peak RSS in MB, bytes of stdout, exit status, CPU seconds) of one
    subprocess."""
    started = time.monotonic()
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env)
    assert proc.stdout is not None
    size = 0
    while chunk := proc.stdout.read(1 << 16):
        size += len(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return (time.monotonic() - started, usage.ru_maxrss / 1024, size, proc.returncode,
            usage.ru_utime + usage.ru_stime)


def first_screen(argv: Sequence[str], env: dict[str, str]) -> float:
    """Seconds until the first 25 lines of output have arrived."""
    started = time.monotonic()
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env)
    assert proc.stdout is not None
    for _ in range(25):
        if not proc.stdout.readline():
            break
    took = time.monotonic() - started
    proc.kill()
    proc.wait()
    return took


def reference_scan(db: Path) -> tuple[float, int]:
    """A bare sqlite3 scan of every open finding with its repository and registry."""
    started = time.monotonic()
    conn = sqlite3.connect(db)
    n = 0
    for _row in conn.execute(
            "SELECT f.package, f.installed_versions, f.fix_version, f.vulnerability, f.severity,"
            " g.name, r.project, r.name, f.first_seen, f.opened_at FROM finding f"
            " JOIN repository r ON r.id = f.repository_id JOIN registry g ON g.id = r.registry_id"
            " WHERE f.resolved_at IS NULL"):
        n += 1
    conn.close()
    return time.monotonic() - started, n


def write_config(path: Path, url: str, admin: tuple[str, str], db: Path, *,
                 routes: bool) -> None:
    """The runs' configuration; with ``routes``, a route for ``alerts preview`` to plan (the
    runs go without one: their alerts would wait on a receiver that is not there)."""
    path.write_text(f"""
[daemon]
database = "sqlite:///{db}"

[[registry]]
name = "sim"
url = "{url}"
username = "{admin[0]}"
password = "{admin[1]}"
requests_per_second = 100000
burst = 1000
max_concurrent_requests = 8

[[schedule]]
name = "scale"
cron = "0 2 * * *"
registries = ["sim"]
select = []
""" + ("" if not routes else """
[[receiver]]
name = "ops"
urls = ["json://127.0.0.1:9/never-sent"]

[[route]]
receivers = ["ops"]
min_severity = "High"

[sla]
Critical = "7d"
High = "30d"
"""))


def line(label: str, value: float, unit: str, target: str, ref: float | None) -> None:
    ratio = f"  ×{value / ref:,.1f} of reference" if ref else ""
    print(f"{label:<48} {value:>9.2f} {unit:<3} (target {target}){ratio}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="artifacts per repository ÷ 100 (default 1.0: 100,000 artifacts)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each query (median)")
    parser.add_argument("--keep", metavar="DIR", help="build the database in DIR and keep it")
    parser.add_argument("--database", metavar="FILE", help="reuse a prepared database")
    args = parser.parse_args()
    log.configure("warning")
    per_repo = max(1, round(100 * args.scale))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        db = Path(args.database) if args.database else work / "scale.db"
        config = work / "config.toml"
        env = {**os.environ, "SCANWATCH_CONFIG": str(config), "SCANWATCH_LOG_LEVEL": "warning"}
        options = SimOptions(seed=11, projects=20, repositories_per_project=50,
                             artifacts_per_repository=per_repo, scanned_share=0.95,
                             index_share=0.0, chart_share=0.0, vulnerabilities_per_artifact=20,
                             harbor_version="v2.14.0", scan_seconds=0.1, scanner_concurrency=4)
        t0 = time.monotonic()
        sim = start_simulator(options)
        print(f"simulator: {sim.control.inventory()['artifacts']} artifacts ready in "
              f"{time.monotonic() - t0:.1f}s", flush=True)
        with sim:
            write_config(config, sim.url, sim.admin, db, routes=False)
            if not args.database and not imports(sim, env):
                return 1
            write_config(config, sim.url, sim.admin, db, routes=True)
            queries(db, env, args.runs)
    return 0


def imports(sim: Simulator, env: dict[str, str]) -> bool:
    """The first import and the unchanged rerun; False when one fails."""
    for label, target in (("run --once, first import", "≤ 250"),
                          ("run --once, unchanged rerun", "≤ 150")):
        sim.control.reset_stats()
        own = resource.getrusage(resource.RUSAGE_SELF)
        took, rss, _, rc, cpu = measure([*SCANWATCH, "run", "--once"], env)
        after = resource.getrusage(resource.RUSAGE_SELF)
        sim_cpu = after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime
        calls = sim.control.stats()["total"]
        print(f"{label}: {took:.1f}s, {calls} calls ({calls / took:,.0f} calls/s), exit {rc};"
              f" CPU: scanwatch {cpu:.1f}s, simulator {sim_cpu:.1f}s", flush=True)
        line(f"{label}, peak RSS", rss, "MB", f"{target} MB", None)
        if rc != 0:
            return False
    return True


def queries(db: Path, env: dict[str, str], runs: int) -> None:
    ref, rows = reference_scan(db)
    print(f"reference: bare sqlite3 scan of {rows:,} open findings in {ref:.2f}s", flush=True)
    conn = sqlite3.connect(db)
    project, repo = conn.execute("SELECT project, name FROM repository LIMIT 1").fetchone()
    conn.close()
    steps: list[tuple[str, list[str], str]] = [
        ("findings (full listing)", ["findings", "--all"], "streamed, ≤ 150 MB"),
        ("findings --format json", ["findings", "--format", "json"], "≥ 50k/s, ≤ 150 MB"),
        ("findings --format jsonl", ["findings", "--format", "jsonl"], "≤ 150 MB"),
        ("findings --fixable --severity Critical",
         ["findings", "--fixable", "--severity", "Critical", "--all"], "< 1 s"),
        ("findings --by action", ["findings", "--by", "action"], "one screen"),
        ("alerts preview --since 7d", ["alerts", "preview", "--since", "7d"], "< 2 s"),
        (f"history sim/{project}/{repo}", ["history", f"sim/{project}/{repo}"], "~1 s"),
        (f"status sim/{project}", ["status", f"sim/{project}"], "~1 s"),
    ]
    # A terminal gets the first page (--limit <lines>); --limit 25 is that page in a pipe.
    screens = [measure([*SCANWATCH, "findings", "--limit", "25"], env)[0] for _ in range(runs)]
    line("findings, first page (25 rows)", statistics.median(screens), "s", "< 1 s", ref)
    streamed = [first_screen([*SCANWATCH, "findings", "--all"], env) for _ in range(runs)]
    line("findings --all, first 25 lines", statistics.median(streamed), "s", "-", ref)
    for label, argv, target in steps:
        results = [measure([*SCANWATCH, *argv], env) for _ in range(runs)]
        took = statistics.median(r[0] for r in results)
        rss = statistics.median(r[1] for r in results)
        size = results[0][2] / MB
        line(f"{label}", took, "s", target, ref)
        print(f"{'':<48} {rss:>9.1f} MB peak RSS, {size:.1f} MB of output, "
              f"exit {results[0][3]}"
              + (f", {rows / took:,.0f} findings/s" if "json" in label else ""), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
