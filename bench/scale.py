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
previous run prepared (``--keep DIR`` keeps one): the import steps are skipped then;
``--imports-only`` runs the import steps alone (no queries).
``--postgres URL`` (an empty database) copies every row there and times the same queries on
PostgreSQL, each against its SQLite figure (target: within 2x).

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


GNU_TIME = "/usr/bin/time"


def measure(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float, int, int, float]:
    """(seconds, peak RSS in MB, bytes of stdout, exit status, CPU seconds) of one
    subprocess. Peak RSS and CPU come from GNU time where it is installed: a child's own
    ``ru_maxrss`` starts at its parent's size when forked, and this process holds the whole
    simulator (a gigabyte at 100,000 artifacts); else from ``wait4``, which has that flaw."""
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        timed = os.path.exists(GNU_TIME)
        prefix = [GNU_TIME, "-f", "%M %U %S", "-o", out.name] if timed else []
        proc = subprocess.Popen([*prefix, *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env)
        assert proc.stdout is not None
        size = 0
        while chunk := proc.stdout.read(1 << 16):
            size += len(chunk)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.monotonic() - started
        rss, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
        if timed:
            fields = out.read().split()[-3:]  # "Command exited with non-zero status N" first
            rss, cpu = int(fields[0]) / 1024, float(fields[1]) + float(fields[2])
    return took, rss, size, os.waitstatus_to_exitcode(status), cpu


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
                 routes: bool, database: str = "") -> None:
    """The runs' configuration; with ``routes``, a route for ``alerts preview`` to plan (the
    runs go without one: their alerts would wait on a receiver that is not there)."""
    path.write_text(f"""
[daemon]
database = "{database or f'sqlite:///{db}'}"

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
    parser.add_argument("--postgres", metavar="URL",
                        help="also copy the database into this empty PostgreSQL database and "
                        "time the same queries there")
    parser.add_argument("--imports-only", action="store_true",
                        help="run the first import and the unchanged rerun, skip the queries")
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
            if args.imports_only:
                return 0
            write_config(config, sim.url, sim.admin, db, routes=True)
            on_sqlite = queries(db, env, args.runs)
            if args.postgres:
                compare_postgres(db, args.postgres, on_sqlite, sim, config, env, args.runs)
    return 0


def copy_database(db: Path, url: str) -> int:
    """Every row of the SQLite history ``db`` into the empty database ``url``, migrated by
    scanwatch first (the same schema); the rows copied."""
    from sqlalchemy import MetaData, create_engine, insert, select

    from daemon.store.db import open_store

    open_store(url).close()  # migrations: the schema, and its version row
    source = create_engine(f"sqlite:///{db}")
    target = create_engine(url)
    have, want = MetaData(), MetaData()
    have.reflect(source)
    want.reflect(target)
    copied = 0
    with source.connect() as src, target.begin() as dst:
        for table in want.sorted_tables:
            if table.name not in have.tables or dst.execute(
                    select(table).limit(1)).first() is not None:
                continue  # scanwatch's own rows (the schema version) stay
            rows = src.execution_options(yield_per=20000).execute(select(have.tables[table.name]))
            for part in rows.partitions():
                dst.execute(insert(table), [dict(r._mapping) for r in part])
                copied += len(part)
        for table in want.sorted_tables:  # later inserts take ids after the copied ones
            if "id" in table.c and table.c.id.autoincrement and table.c.id.primary_key:
                dst.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table.name}), 1))")
    return copied


def compare_postgres(db: Path, url: str, on_sqlite: dict[str, float], sim: Simulator,
                     config: Path, env: dict[str, str], runs: int) -> None:
    """The same queries on PostgreSQL (``url``: an empty database) holding the same rows,
    each against its SQLite figure (target: within 2x)."""
    started = time.monotonic()
    copied = copy_database(db, url)
    print(f"postgresql: {copied:,} rows copied in {time.monotonic() - started:.0f}s", flush=True)
    from daemon.store.db import open_store

    # The copy's inserts fired the carrier triggers: summarised again, as a run's end would.
    started = time.monotonic()
    store = open_store(url)
    refreshed = store.refresh_carriers()
    store.close()
    print(f"postgresql: carriers of {refreshed:,} repositories summarised in "
          f"{time.monotonic() - started:.0f}s", flush=True)
    write_config(config, sim.url, sim.admin, db, routes=True, database=url)
    on_postgres = queries(db, env, runs, quiet=True)
    for label, took in on_postgres.items():
        ref = on_sqlite.get(label)
        print(f"{label + ' on PostgreSQL':<48} {took:>9.2f} s   (target within 2x of SQLite)"
              + (f"  ×{took / ref:,.2f} of SQLite" if ref else ""), flush=True)


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


def queries(db: Path, env: dict[str, str], runs: int, *, quiet: bool = False
            ) -> dict[str, float]:
    """Each query's median seconds (printed unless ``quiet``)."""
    ref, rows = reference_scan(db)
    if not quiet:
        print(f"reference: bare sqlite3 scan of {rows:,} open findings in {ref:.2f}s",
              flush=True)
    out: dict[str, float] = {}
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
    measure([*SCANWATCH, "findings", "--limit", "1"], env)  # a migration, if any, first
    screens = [measure([*SCANWATCH, "findings", "--limit", "25"], env)[0] for _ in range(runs)]
    out["findings, first page (25 rows)"] = statistics.median(screens)
    streamed = [first_screen([*SCANWATCH, "findings", "--all"], env) for _ in range(runs)]
    out["findings --all, first 25 lines"] = statistics.median(streamed)
    if not quiet:
        line("findings, first page (25 rows)", out["findings, first page (25 rows)"], "s",
             "< 1 s", ref)
        line("findings --all, first 25 lines", out["findings --all, first 25 lines"], "s",
             "-", ref)
    for label, argv, target in steps:
        results = [measure([*SCANWATCH, *argv], env) for _ in range(runs)]
        took = out[label] = statistics.median(r[0] for r in results)
        rss = statistics.median(r[1] for r in results)
        cpu = statistics.median(r[4] for r in results)  # what a loaded machine leaves fair
        size = results[0][2] / MB
        if quiet:
            continue
        line(f"{label}", took, "s", target, ref)
        print(f"{'':<48} {rss:>9.1f} MB peak RSS, {cpu:.2f} s CPU, {size:.1f} MB of output, "
              f"exit {results[0][3]}"
              + (f", {rows / took:,.0f} findings/s ({rows / cpu:,.0f} per CPU second)"
                 if "json" in label else ""), flush=True)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
