"""Benchmark: the web pages' server time on the scale issue's database (issue 18, point 3).

Builds the database as ``bench/scale.py`` does (the simulator's 20 projects × 50 repositories ×
100·``--scale`` artifacts, a real ``run --once``), or reuses one (``--database FILE``), then
renders each page through ``WebApp.respond`` over the read-only store, in this process, the way
the daemon's worker thread does: the figure is server time (query + template), median of
``--runs``. Target: every page under 300 ms. Reference, measured in the same run: the bare
``sqlite3`` scan of every open finding of ``bench/scale.py``; each line prints its ratio to it.

"Fix first" is read from the plan the writer counts after each run (``store/plan.py``): the
benchmark counts it once as the daemon does (``Store.build_plan``, timed), then prints for each
filter the first request (cold: nothing kept in the app; the median over ``--runs`` fresh
apps) and the kept one (``WebApp.kept``,
the median of the rest), and what counting that filter's plan from the findings costs
(``actions.counted``: each filter's first request before the plan was materialised). The
charts print their first request too.

    .venv/bin/python bench/web.py [--scale 1.0] [--runs 5] [--keep DIR | --database FILE]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import imports, line, reference_scan, write_config  # noqa: E402

from daemon import log  # noqa: E402
from daemon.config import load  # noqa: E402
from daemon.sim import SimOptions, start_simulator  # noqa: E402


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


def serve_times(config_path: Path, db: Path, runs: int) -> None:
    from urllib.parse import parse_qs, urlsplit

    from daemon.store.db import open_store
    from daemon.store.pages import read_only_store
    from daemon.web.app import WebApp
    from daemon.web.auth import BasicAuth

    ref, rows = reference_scan(db)
    print(f"reference: bare sqlite3 scan of {rows:,} open findings in {ref * 1000:.0f} ms",
          flush=True)
    config = load(config_path, strict=False)
    writer = open_store(f"sqlite:///{db}")  # migrates a database of an older scanwatch
    store = read_only_store(f"sqlite:///{db}")
    app = WebApp(config, store, BasicAuth(None))
    started = time.perf_counter()
    app.rebuild = lambda: writer.build_plan(writer.ignore_rules(config), app.now())
    app.rebuild()
    line("plan counted by the writer after a run", (time.perf_counter() - started) * 1000,
         "ms", "once per run, off the pages", ref * 1000)
    try:
        for label, target in pages_of(db):
            took = []
            for _ in range(runs):
                started = time.perf_counter()
                response = app.respond("GET", target, {})
                took.append(time.perf_counter() - started)
                assert response.status == 200, (target, response.status, response.body[:300])
            if label.startswith("fix first") or "chart" in label:  # kept while history stays
                # The first request of as many fresh apps (nothing kept, templates compiled as
                # in a daemon that has served before), median: one sample is the machine's
                # moment as much as the page's.
                cold = [took[0]]
                for _ in range(runs - 1):
                    fresh = WebApp(config, store, BasicAuth(None))
                    fresh.env = app.env  # templates compiled once per daemon, not per change
                    started = time.perf_counter()
                    fresh.respond("GET", target, {})
                    cold.append(time.perf_counter() - started)
                line(f"{label}, first request", statistics.median(cold) * 1000, "ms",
                     "< 300 ms", ref * 1000)
                line(f"{label}, kept", statistics.median(took[1:] or took) * 1000, "ms",
                     "< 300 ms", ref * 1000)
            else:
                line(f"{label}", statistics.median(took) * 1000, "ms", "< 300 ms", ref * 1000)
            if label.startswith("fix first"):  # the same plan counted from the findings
                query = app._query({k: v[-1] for k, v in parse_qs(urlsplit(target).query).items()})
                rules = store.ignore_rules(config)
                started = time.perf_counter()
                store.finding_actions(query, rules=rules, now=app.now())
                line(f"{label}, counted (before)", (time.perf_counter() - started) * 1000,
                     "ms", "what its first request cost", ref * 1000)
    finally:
        store.close()
        writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", metavar="DIR")
    parser.add_argument("--database", metavar="FILE")
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
            serve_times(config, db, args.runs)
            return 0
        sim = start_simulator(options)
        with sim:
            write_config(config, sim.url, sim.admin, db, routes=False)
            if not imports(sim, env):
                return 1
            write_config(config, sim.url, sim.admin, db, routes=True)
            serve_times(config, db, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
