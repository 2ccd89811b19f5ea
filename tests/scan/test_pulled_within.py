"""``only_pulled_within`` against a simulator that records pulls as Harbor does, its scanner's
own included (Harbor's default: "Retain image last pull time on scanning" is off): an image is
"pulled" when someone pulled it, not because it was scanned. As a real `run --once`
subprocess: after a scanner DB update, of images that were all scanned (and so pulled by the
scanner), only the one somebody pulled by tag is rescanned."""

from __future__ import annotations

from pathlib import Path

import httpx
from runkit import Cli, write_config

from daemon.sim import SimOptions, start_simulator

SCAN = "POST /projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/scan"


def test_only_images_somebody_pulled_are_rescanned_not_those_the_scanner_pulled(
    tmp_path: Path
) -> None:
    options = SimOptions(seed=4, projects=1, repositories_per_project=2,
                         artifacts_per_repository=3, scanned_share=1.0, index_share=0.0,
                         chart_share=0.0, scan_seconds=0.05)
    with start_simulator(options) as sim:
        repo = httpx.get(f"{sim.url}/api/v2.0/repositories", auth=sim.admin).json()[0]["name"]
        project, _, short = repo.partition("/")
        arts = httpx.get(f"{sim.url}/api/v2.0/projects/{project}/repositories/{short}/artifacts",
                         auth=sim.admin, params={"with_tag": "true"}).json()
        listed = httpx.get(f"{sim.url}/api/v2.0/repositories", auth=sim.admin).json()
        images = sum(r["artifact_count"] for r in listed)
        assert images >= 4 and all(a["pull_time"] != "0001-01-01T00:00:00.000Z" for a in arts)
        pulled = next(a for a in arts if a["tags"])
        tag = pulled["tags"][0]["name"]
        got = httpx.get(f"{sim.url}/v2/{repo}/manifests/{tag}", auth=sim.admin,
                        headers={"Accept": pulled["manifest_media_type"]})
        assert got.status_code == 200  # somebody's pull, by tag
        sim.control.db_update()  # every report is now older than the scanner's DB
        path = write_config(tmp_path, sim.url, "admin")
        text = path.read_text().replace(
            'select = ["changed", "unscanned", "failed"]',
            'select = ["db_updated"]\nonly_pulled_within = "7d"').replace(
            "max_retries = 1\n", "max_retries = 1\nread_manifests = false\n")
        path.write_text(text)
        sim.control.reset_stats()
        done = Cli(path, sim.admin[1])("run", "--once")
        assert done.returncode == 0, done.stderr
        triggered = sim.control.stats()["requests"].get(SCAN, 0)
    assert triggered == 1  # the image pulled by tag; the scanner's pulls of the others are not
