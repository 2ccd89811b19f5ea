"""Benchmark: the web pages' server time on the scale issue's database (issue 18, point 3).

Builds the database as ``bench/scale.py`` does (the simulator's 20 projects × 50 repositories ×
100·``--scale`` artifacts, a real ``run --once``), or reuses one (``--database FILE``), then
renders each page through ``WebApp.respond`` over the read-only store, in this process, the way
the daemon's worker thread does: the figure is server time (query + template). Target: every
page under 300 ms. Each page prints the median of ``--runs`` (default 3) first requests, each
on a fresh ``WebApp`` (nothing kept; templates compiled once, as in a daemon that has served
before), as wall time and as this thread's CPU time (the machine may be shared: the CPU time
is the server's own work), and its ratio to the reference, measured in the same run: the bare
``sqlite3`` scan of every open finding of ``bench/scale.py`` (median of ``--runs``, CPU time
against CPU time). Pages kept while history stays (Fix first, the charts) print their kept
request too.

Before the pages, the writer counts the plan and the pages' summary as the daemon does after
each run (``WebApp.warm``: ``Store.build_plan``, then the whole registry's first page), timed
once. ``--counted`` also prints what each Fix first filter costs counted from the findings
(``actions.counted``: its first request before the plan was materialised; minutes in all at
100,000). ``--postgres URL`` (an empty database) copies every row there and times the same
pages on PostgreSQL, each against its SQLite figure (target: within 2×; wall time, as the
database's work is in its own processes there).

    .venv/bin/python bench/web.py [--scale 1.0] [--runs 3] [--keep DIR | --database FILE]
                                  [--counted] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import copy_database, imports, reference_scan, write_config  # noqa: E402

from daemon import log  # noqa: E402
from daemon.config import load  # noqa: E402
from daemon.sim import SimOptions, start_simulator  # noqa: E402

T = TypeVar("T")


def pages_of(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    project, repo, repo_id = conn.execute(
        "SELECT project, name, id FROM repository LIMIT 1 OFFSET 7").fetchone()
    digest = conn.execute("SELECT digest FROM artifact WHERE repository_id = ? LIMIT 1",
                          (repo_id,)).fetchone()[0]
    vuln, package = conn.execute("SELECT vulnerability, package FROM finding WHERE "
                                 "repository_id = ? LIMIT 1", (repo_id,)).fetchone()
    conn.close()
    where = f"sim/{quote(project)}/{repo}"
    return [
        ("overview", "/"),
        ("findings (first page)", "/findings"),
        ("findings, alert Details link", f"/findings?registry=sim&project={project}"
                                         f"&repository={quote(repo)}&severity=High"),
        ("fix first, one repository", f"/fix?registry=sim&project={project}"
                                      f"&repository={quote(repo)}"),
        ("fix first, Critical fixable, whole registry", "/fix?severity=Critical&fixable=yes"),
        ("fix first, High and worse, whole registry", "/fix?severity=High"),
        ("fix first, without a fix, whole registry", "/fix?fixable=no"),
        ("fix first, one project", f"/fix?registry=sim&project={project}"),
        ("fix first, one package", f"/fix?package={quote(package)}"),
        ("fix first, whole registry", "/fix"),
        ("repository", f"/repositories/{where}"),
        ("image", f"/images/{where}@{digest}"),
        ("finding", f"/finding?registry=sim&project={project}&repository={quote(repo)}"
                    f"&vulnerability={vuln}&package={quote(package)}"),
        ("trends", "/trends"),
        ("trends: open findings chart", "/trends/open.svg"),
        ("trends: time-to-fix chart", "/trends/fix.svg"),
    ]


Figure = tuple[float, float]  # (wall, CPU) seconds
KEPT_PAGES = ("fix first", "trends: ")  # pages kept while history stays


def timed(call: Callable[[], T]) -> tuple[float, float, T]:
    """``call()``'s wall and CPU time (this thread's: the request's own work) and result."""
    wall, cpu = time.perf_counter(), time.thread_time()
    out = call()
    return time.perf_counter() - wall, time.thread_time() - cpu, out


def median(figures: list[Figure]) -> Figure:
    return (statistics.median(w for w, _ in figures), statistics.median(c for _, c in figures))


def reference(db: Path, runs: int) -> tuple[Figure, int]:
    """The bare sqlite3 scan (``scale.reference_scan``), median of ``runs``, and its rows."""
    figures, rows = [], 0
    for _ in range(runs):
        wall, cpu, (_, rows) = timed(lambda: reference_scan(db))
        figures.append((wall, cpu))
    return median(figures), rows


def show(label: str, figure: Figure, target: str, ref: Figure) -> None:
    wall, cpu = figure
    print(f"{label:<60} wall {wall * 1000:7.1f} ms  cpu {cpu * 1000:7.1f} ms  (target {target})"
          f"  ×{cpu / ref[1]:.2f} of reference (cpu)", flush=True)


def page_times(config_path: Path, url: str, db: Path, runs: int, ref: Figure,
               counted: bool = False) -> dict[str, Figure]:
    """Each page's median first request (and kept one), printed; the first requests."""
    from urllib.parse import parse_qs, urlsplit

    from daemon.store.db import open_store
    from daemon.store.pages import read_only_store
    from daemon.web.app import WebApp
    from daemon.web.auth import BasicAuth

    config = load(config_path, strict=False)
    writer = open_store(url)  # migrates a database of an older scanwatch
    store = read_only_store(url)
    app = WebApp(config, store, BasicAuth(None))
    app.rebuild = lambda: writer.build_plan(writer.ignore_rules(config), app.now())
    wall, cpu, _ = timed(app.warm)
    show("plan and summary counted by the writer after a run", (wall, cpu),
         "once per run, off the pages", ref)
    firsts: dict[str, Figure] = {}
    try:
        for label, target in pages_of(db):
            cold, fresh = [], app
            for _ in range(runs):
                fresh = WebApp(config, store, BasicAuth(None))
                fresh.env = app.env  # templates compiled once per daemon, not per change
                wall, cpu, response = timed(partial(fresh.respond, "GET", target, {}))
                assert response.status == 200, (target, response.status, response.body[:300])
                cold.append((wall, cpu))
            firsts[label] = median(cold)
            show(f"{label}, first request", firsts[label], "< 300 ms", ref)
            if label.startswith(KEPT_PAGES):
                kept = [timed(partial(fresh.respond, "GET", target, {}))[:2]
                        for _ in range(runs)]
                show(f"{label}, kept", median(kept), "< 300 ms", ref)
            if counted and label.startswith("fix first"):  # counted from the findings
                query = app._query({k: v[-1] for k, v in
                                    parse_qs(urlsplit(target).query).items()})
                rules = store.ignore_rules(config)
                wall, cpu, _ = timed(partial(store.finding_actions, query, rules=rules,
                                             now=app.now()))
                show(f"{label}, counted (before)", (wall, cpu), "what its first request cost",
                     ref)
    finally:
        store.close()
        writer.close()
    return firsts


def serve_times(config_path: Path, db: Path, runs: int, counted: bool, postgres: str) -> None:
    ref, rows = reference(db, runs)
    print(f"reference: bare sqlite3 scan of {rows:,} open findings: wall {ref[0] * 1000:.0f} ms,"
          f" cpu {ref[1] * 1000:.0f} ms (median of {runs})", flush=True)
    on_sqlite = page_times(config_path, f"sqlite:///{db}", db, runs, ref, counted)
    if not postgres:
        return
    started = time.monotonic()
    copied = copy_database(db, postgres)
    print(f"postgresql: {copied:,} rows copied in {time.monotonic() - started:.0f}s", flush=True)
    on_postgres = page_times(config_path, postgres, db, runs, ref)
    for label, (wall, cpu) in on_postgres.items():
        print(f"{label + ' on PostgreSQL':<60} wall {wall * 1000:7.1f} ms  cpu {cpu * 1000:7.1f}"
              f" ms  (target within 2x of SQLite)  ×{wall / on_sqlite[label][0]:.2f} of SQLite"
              " (wall)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR")
    parser.add_argument("--database", metavar="FILE")
    parser.add_argument("--counted", action="store_true",
                        help="also count each Fix first filter from the findings (before)")
    parser.add_argument("--postgres", metavar="URL",
                        help="also copy the database into this empty PostgreSQL database and "
                        "time the same pages there")
    args = parser.parse_args()
    log.configure("warning")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        db = Path(args.database) if args.database else work / "scale.db"
        config = work / "config.toml"
        env = {**os.environ, "SCANWATCH_CONFIG": str(config), "SCANWATCH_LOG_LEVEL": "warning"}
        options = SimOptions(seed=11, projects=20, repositories_per_project=50,
                             artifacts_per_repository=max(1, round(100 * args.scale)),
                             scanned_share=0.95, index_share=0.0, chart_share=0.0,
                             vulnerabilities_per_artifact=20, harbor_version="v2.14.0",
                             scan_seconds=0.1, scanner_concurrency=4)
        if args.database:  # no run: the registry's URL only makes the pages' Harbor links
            write_config(config, "http://127.0.0.1:9", ("admin", "unused"), db, routes=True)
            serve_times(config, db, args.runs, args.counted, args.postgres)
            return 0
        sim = start_simulator(options)
        with sim:
            write_config(config, sim.url, sim.admin, db, routes=False)
            if not imports(sim, env):
                return 1
            write_config(config, sim.url, sim.admin, db, routes=True)
            serve_times(config, db, args.runs, args.counted, args.postgres)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
