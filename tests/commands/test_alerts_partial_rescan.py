"""A repository of 200 images rescanned under ``max_scans = 100`` across runs, after a scanner DB
update: each (finding, change) reaches each receiver once.

Findings are per repository, but events come from per-image diffs, and the second half of the
images is rescanned one run later. The notification log is keyed by (receiver, finding, change
kind, changed value), so the second run's events for changes already told are dropped. The
simulator is in-process, ``scanwatch run --once`` the real console script, the receiver a JSON
webhook on 127.0.0.1; the items come from ``scanwatch alerts outbox --format json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from test_alerts_after_db_update import Hook

from daemon.sim import SimOptions, start_simulator

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))


def test_each_finding_change_reaches_each_receiver_once(tmp_path: Path) -> None:
    hook = Hook()
    sim = start_simulator(SimOptions(
        seed=3, projects=1, repositories_per_project=1, artifacts_per_repository=200,
        vulnerabilities_per_artifact=12, scanned_share=1.0, index_share=0.0, chart_share=0.0,
        scan_seconds=0.0, scanner_concurrency=8, job_workers=16))
    config = tmp_path / "config.toml"
    config.write_text(f"""\
[daemon]
database = "sqlite:///{tmp_path / 'history.db'}"
outbox_drain_timeout = "60s"

[[registry]]
name = "sim"
url = "{sim.url}"
username = "admin"
password = "${{SIM_PASSWORD}}"
requests_per_second = 500.0
burst = 200
max_scans_in_flight = 16

[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["sim"]
select = ["changed", "unscanned", "failed", "db_updated"]
max_scans = 100

[[receiver]]
name = "hook"
urls = ["json://127.0.0.1:{hook.port}/hook"]

[[receiver]]
name = "other"
urls = ["json://127.0.0.1:{hook.port}/other"]

[[route]]
name = "all"
receivers = ["hook", "other"]
min_severity = "None"
events = ["new", "fix_available", "severity_up", "severity_down", "reopened"]
""")
    env = {**os.environ, "SIM_PASSWORD": sim.admin[1]}
    env.pop("SCANWATCH_CONFIG", None)

    def scanwatch(*args: str) -> Any:
        result = subprocess.run([SCANWATCH, *args, "--config", str(config), "--format", "json"],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return json.loads(result.stdout)

    try:
        scanwatch("run", "--once")  # first sight: nothing per CVE
        changes = sim.control.db_update(added=0.1, fix_released=0.3, rescored=0.2)
        rescanned = []
        for _ in range(3):  # 200 images, 100 a run: the last run finds nothing left to do
            [run] = scanwatch("run", "--once")["runs"]
            [reg] = run["registries"]
            rescanned.append(reg["lanes"].get("db_updated", 0))
        rows = scanwatch("alerts", "outbox", "--limit", "1000")
    finally:
        sim.stop()
        hook.shutdown()
        hook.server_close()
    assert rescanned == [100, 100, 0], rescanned
    assert any(changes[k] for k in ("added", "fix_released", "rescored"))
    assert {r["status"] for r in rows} == {"sent"}
    for receiver in ("hook", "other"):
        items = Counter(
            (i["vulnerability"], i["package"], i["change"], i["value"])
            for r in rows if r["receiver"] == receiver for i in r["items"])
        assert items, f"{receiver} was told nothing"
        twice = {k: n for k, n in items.items() if n > 1}
        assert not twice, f"{receiver} was told these more than once: {twice}"
        kinds = {k[2] for k in items}
        assert {"fix_available", "severity_up"} & kinds, kinds
    # The second run's half found changes the first run's half had already told.
    per_run = [r for r in rows if r["receiver"] == "hook"]
    assert len(per_run) >= 1
