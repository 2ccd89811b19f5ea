"""Known-exploited CVEs raise an image's rescan priority: after a scanner DB update, a run with
room for one rescan takes the image whose repository carries a CVE of the real KEV catalog
(CVE-2025-48384, served by the simulator and read with `scanwatch intel refresh`) before an
image with more fixable High findings, which would go first without KEV. `scanwatch run
--once` as a subprocess, a real SQLite file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from feedkit import GIT, GIT_CVE, trivy_report
from runkit import sim_toml

from daemon.sim import SimOptions, start_simulator

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))
LIBC = ("libc6", "2.36-9+deb12u10", "2.36-9+deb12u11")


def open_kev_repositories(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute(
            "SELECT r.name FROM finding f JOIN repository r ON r.id = f.repository_id "
            "WHERE f.resolved_at IS NULL AND f.vulnerability = ?", (GIT_CVE,))}


def rescanned_repositories(sim: Any, since_wall: float) -> list[str]:
    """The repositories (without the project) whose image the simulator scanned since then."""
    with sim.state.lock:
        return sorted(a.repo.short for a in sim.state.inventory.all_artifacts()
                      if a.top_level and a.scan is not None
                      and (a.scan.end_wall or 0) > since_wall)


def test_an_image_with_a_known_exploited_cve_is_rescanned_first(tmp_path: Path,
                                                                shared_dir: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    # One High fix in the git image (the KEV CVE), three in the other: by fixable count alone
    # the other would go first.
    trivy_report(reports / "a-git.json", [(GIT_CVE, *GIT, "HIGH")])
    trivy_report(reports / "b-libc.json", [(f"CVE-2025-480{n}", *LIBC, "HIGH")
                                           for n in range(1, 4)])
    sim = start_simulator(SimOptions(
        seed=3, projects=1, repositories_per_project=4, artifacts_per_repository=1,
        scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.05,
        trivy_reports=reports,
        feeds={"kev": str(shared_dir / "fixtures" / "kev" / "kev-2025.08.25.json")}))
    db = tmp_path / "history.db"
    config = tmp_path / "config.toml"
    config.write_text(f"""\
{sim_toml(db, sim.url)}
[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["sim"]
select = ["db_updated"]
max_scans = 1

[[feed]]
name = "kev"
url = "{sim.url}/feeds/kev.json"
""")
    env = {**os.environ, "SIM_PASSWORD": sim.admin[1]}
    env.pop("SCANWATCH_CONFIG", None)

    def cli(*argv: str) -> Any:
        done = subprocess.run([SCANWATCH, *argv, "--config", str(config)], capture_output=True,
                              text=True, env=env, timeout=180)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return done

    try:
        cli("intel", "refresh", "--feed", "kev")
        cli("run", "--once")  # imports both reports
        kev_repos = open_kev_repositories(db)
        with sqlite3.connect(db) as conn:
            repos = {r[0] for r in conn.execute("SELECT name FROM repository")}
        assert kev_repos and repos - kev_repos, (kev_repos, repos)  # both kinds of image
        sim.control.db_update(added=0.0, fix_released=0.0, rescored=0.0)
        updated = sim.state.wall()
        cli("run", "--once")
        [rescanned] = rescanned_repositories(sim, updated)
    finally:
        sim.stop()
    assert rescanned in kev_repos, (rescanned, kev_repos)
