"""The defaults catch what matters: a schedule without ``select`` rescans what a scanner DB
update made out of date, and a route without ``events`` sends the findings it rescored upwards.

A scanner DB update is the commonest source of new CVEs: with a default that left out
``db_updated``, an unchanged image was never rescanned and its new CVEs never seen. The
simulator runs in-process (its DB update says what it changed), ``scanwatch run --once`` is the
real console script, and the receiver is a JSON webhook on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from runkit import sim_toml
from test_alerts_after_db_update import Hook

from daemon.model import ChangeKind
from daemon.store.db import open_store

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))


def test_a_schedule_and_a_route_without_settings_rescan_after_a_db_update_and_send_severity_up(
    make_sim: Any, tmp_path: Path
) -> None:
    sim = make_sim(seed=3, projects=1, repositories_per_project=2, artifacts_per_repository=2,
                   scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.05,
                   scanner_concurrency=4)
    hook = Hook()
    db = tmp_path / "history.db"
    config = tmp_path / "config.toml"
    # No `select` in the schedule and no `events` in the route: the defaults decide.
    config.write_text(f"""\
{sim_toml(db, sim.url, drain=True, in_flight=8)}
[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["sim"]

[[receiver]]
name = "hook"
urls = ["json://127.0.0.1:{hook.port}/hook"]

[[route]]
receivers = ["hook"]
min_severity = "None"
""")
    env = {**os.environ, "SIM_PASSWORD": sim.admin[1]}
    env.pop("SCANWATCH_CONFIG", None)

    def run_once() -> dict[str, Any]:
        done = subprocess.run([SCANWATCH, "run", "--once", "--config", str(config),
                               "--format", "json"], capture_output=True, text=True, env=env,
                              timeout=180)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    try:
        first = run_once()  # every image already scanned: imported, first sight, nothing sent
        [reg] = first["runs"][0]["registries"]
        assert reg["imported"] == reg["artifacts"] == 4 and reg["triggered"] == 0
        # Only rescorings, so that every change the run records is a severity change.
        changes = sim.control.db_update(added=0.0, fix_released=0.0, rescored=1.0)
        assert changes["rescored"]

        second = run_once()
        [reg] = second["runs"][0]["registries"]
        # Each image's last scan is older than the scanner DB now: the default select has it.
        assert reg["lanes"] == {"db_updated": reg["artifacts"]}
        assert reg["outcomes"] == {"complete": reg["artifacts"]}
    finally:
        hook.shutdown()
        hook.server_close()

    directions = severity_changes(db)  # (package, installed version) → {"up", "down"}
    up = {key for key, seen in directions.items() if "up" in seen}
    down_only = {key for key, seen in directions.items() if seen == {"down"}}
    assert up and down_only, "seed 3 rescores some findings up and some down"
    [body] = hook.bodies  # without severity_up in the defaults there would be no message
    doc = json.loads(body["message"])
    sent = {(a["package"], a["installed_version"])
            for section in ("fix_now", "no_fix") for a in doc[section]}
    # severity_up is a default route event; severity_down is not.
    assert up <= sent
    assert not sent & down_only


def severity_changes(db: Path) -> dict[tuple[str, str], set[str]]:
    """(package, installed version) → the directions of the severity changes recorded."""
    store = open_store(f"sqlite:///{db}")
    try:
        out: dict[tuple[str, str], set[str]] = {}
        for project, repository in store_repositories(store):
            for entry in store.history("sim", project, repository):
                for change in entry.changes:
                    if change.kind is not ChangeKind.SEVERITY_CHANGED:
                        continue
                    assert change.previous_severity is not None
                    way = "up" if change.severity > change.previous_severity else "down"
                    key = (change.finding.package, change.installed_version)
                    out.setdefault(key, set()).add(way)
        return out
    finally:
        store.close()


def store_repositories(store: Any) -> list[tuple[str, str]]:
    return sorted({(f.key.project, f.key.repository)
                   for f in store.open_findings(registry="sim")})
