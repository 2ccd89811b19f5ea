"""`scanwatch schedule preview`: fire times in the schedule's zone and UTC, and a run estimate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

SCANWATCH = Path(sys.executable).with_name("scanwatch")

CONFIG = """
[daemon]
database = "sqlite:///{db}"

[[registry]]
name = "sim"
url = "{url}"
username = "admin"
password = "${{SIM_PASSWORD}}"
requests_per_second = 50
burst = 10

[[schedule]]
name = "nightly"
cron = "30 2 * * 1-5"
timezone = "Europe/Berlin"
registries = ["sim"]
select = ["changed", "unscanned", "failed", "stale"]
stale_after = "1s"
"""


def scanwatch(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIM_PASSWORD": password}
    return subprocess.run([str(SCANWATCH), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_it_previews_fire_times_and_estimates_from_the_last_inventory(tmp_path, make_sim):
    sim = make_sim(projects=2, repositories_per_project=1, artifacts_per_repository=2,
                   scanned_share=1.0, chart_share=0.0, index_share=0.0, scan_seconds=0.1)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=tmp_path / "h.db", url=sim.url))

    before = scanwatch("schedule", "preview", "--config", str(config), "-n", "3",
                       "--format", "json", password=sim.admin[1])
    assert before.returncode == 0, before.stderr
    item = json.loads(before.stdout)[0]
    local = [datetime.fromisoformat(t["local"]) for t in item["next"]]
    assert len(local) == 3
    assert all((t.hour, t.minute) == (2, 30) and t.isoweekday() <= 5 for t in local)
    assert all(t.tzinfo is not None and t.utcoffset() is not None for t in local)
    assert [datetime.fromisoformat(t["utc"]) for t in item["next"]] == local
    assert item["registries"] == [{"registry": "sim", "known": False}]
    assert not (tmp_path / "h.db").exists(), "a preview never creates the database"

    run = scanwatch("run", "--once", "--config", str(config), password=sim.admin[1])
    assert run.returncode == 0, run.stderr
    after = scanwatch("schedule", "preview", "nightly", "--config", str(config),
                      "--format", "json", password=sim.admin[1])
    reg = json.loads(after.stdout)[0]["registries"][0]
    inventory = sim.control.inventory()
    assert reg["known"] and reg["artifacts"] == inventory["artifacts"]
    # Every artifact was scanned by the first run and is stale after 1 s by the next fire time.
    assert reg["lanes"] == {"stale": inventory["artifacts"]}
    assert reg["api_calls"] > 0 and reg["duration_seconds"] >= 0
    text = scanwatch("schedule", "preview", "--config", str(config), password=sim.admin[1])
    assert "would scan" in text.stdout and "UTC" in text.stdout


def test_it_names_an_unknown_schedule(tmp_path, make_sim):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=tmp_path / "h.db", url="http://127.0.0.1:9"))
    done = scanwatch("schedule", "preview", "weekly", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.strip() == "scanwatch: unknown schedule 'weekly' (known: nightly)"
