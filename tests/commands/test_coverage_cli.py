"""The rescan trickle's coverage (images whose report is older than the scanner's DB, and the
oldest) where a user looks: `scanwatch runs`, `doctor`, `config check` (a falling-behind
warning with the numbers) and the heartbeat message, as subprocesses against the simulator,
the heartbeat through a real JSON webhook on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hookkit import Hook
from runkit import sim_toml

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))
IMAGES = 4


def test_coverage_and_falling_behind_are_said_with_the_numbers(make_sim: Any,
                                                               tmp_path: Path) -> None:
    sim = make_sim(seed=3, projects=1, repositories_per_project=1,
                   artifacts_per_repository=IMAGES, scanned_share=1.0, index_share=0.0,
                   chart_share=0.0, scan_seconds=0.05, scanner_concurrency=4)
    hook = Hook()
    db = tmp_path / "history.db"
    config = tmp_path / "config.toml"
    # One rescan a daily run: three images behind take two more days, longer than the DB's
    # daily update.
    config.write_text(f"""\
{sim_toml(db, sim.url)}
[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["sim"]
max_scans = 1

[[receiver]]
name = "hook"
urls = ["json://127.0.0.1:{hook.port}/hook"]

[[route]]
receivers = ["hook"]
heartbeat = true
""")
    env = {**os.environ, "SIM_PASSWORD": sim.admin[1]}
    env.pop("SCANWATCH_CONFIG", None)

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([SCANWATCH, *args, "--config", str(config)], env=env,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def done(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
        out, err = proc.communicate(timeout=180)
        assert "Traceback" not in err, err
        return proc.returncode, out, err

    assert done(start("run", "--once"))[0] == 0  # imports every report
    sim.control.db_update(added=0.0, fix_released=0.0, rescored=0.0)  # a new DB, same CVEs
    before = len(hook.bodies)
    code, _, err = done(start("run", "--once"))
    assert code == 0, err
    runs, table, doctor, check = (start("runs", "--format", "json"), start("runs"),
                                  start("doctor", "--format", "json"), start("config", "check"))

    coverage = json.loads(done(runs)[1])[0]["coverage"]["sim"]
    assert (coverage["images"], coverage["behind_db"], coverage["budget"]) == (IMAGES, 3, 1)
    assert coverage["oldest_behind"] and coverage["rescans"] is True
    falling = coverage["falling_behind"]
    assert falling.startswith(f"registry sim: 3 of {IMAGES} images have reports older than "
                              "the scanner DB; at 1 rescans a run (max_scans) every 24.0 h, "
                              "covering them takes 48.0 h")
    lines = done(table)[1].splitlines()
    assert "BEHIND" in lines[0] and f" 3/{IMAGES}! " in lines[2]  # the newest run

    code, out, _ = done(doctor)
    [cov] = [c for c in json.loads(out)["checks"] if c["check"] == "coverage"]
    assert cov["ok"] is True and cov["warning"] is True
    assert cov["subject"] == "registry sim"
    assert cov["detail"].startswith(falling.removeprefix("registry sim: ") + " (run of ")
    assert code == 0  # a warning, not a failure

    code, _, err = done(check)
    assert code == 0
    assert f"scanwatch: warning: {falling}" in err

    # The second run changed nothing: the heartbeat carries the coverage.
    [beat] = [d for d in hook.documents(before) if d.get("heartbeat")]
    assert (beat["heartbeat"]["behind_db"], beat["heartbeat"]["images"]) == (3, IMAGES)
    assert beat["heartbeat"]["oldest_behind"] == coverage["oldest_behind"]
