"""The simulator's Scan All as Harbor runs it (API-NOTES §13): every artifact queued at once, 409
while it goes on, its metrics, and an adapter whose queue shows the burst."""

from __future__ import annotations

import time
from typing import Any

import httpx

SCHEDULE = "/api/v2.0/system/scanAll/schedule"


def test_a_manual_scan_all_queues_everything_at_once_past_the_adapters_workers(
        make_sim: Any) -> None:
    sim = make_sim(seed=4, projects=2, repositories_per_project=3, artifacts_per_repository=3,
                   index_share=0.0, chart_share=0.0, scan_seconds=0.3, scanner_concurrency=2)
    assert httpx.get(sim.url + SCHEDULE, auth=sim.admin).json() is None
    assert httpx.post(sim.url + SCHEDULE, json={"schedule": {"type": "Manual"}},
                      auth=("nobody", "x")).status_code == 401
    started = httpx.post(sim.url + SCHEDULE, json={"schedule": {"type": "Manual"}},
                         auth=sim.admin)
    assert started.status_code == 201
    load = sim.control.scanner()
    assert load["scanning"] == 2 and load["queued"] == 16 and load["peak_queued"] == 16
    again = httpx.post(sim.url + SCHEDULE, json={"schedule": {"type": "Manual"}},
                       auth=sim.admin)
    assert again.status_code == 409
    metrics = httpx.get(sim.url + "/api/v2.0/scans/all/metrics", auth=sim.admin).json()
    assert metrics["total"] == 18 and metrics["ongoing"] is True
    deadline = time.monotonic() + 30
    while sim.control.scanner()["finished"] < 18 and time.monotonic() < deadline:
        time.sleep(0.1)
    metrics = httpx.get(sim.url + "/api/v2.0/scans/all/metrics", auth=sim.admin).json()
    assert metrics["completed"] == 18 and metrics["metrics"]["Success"] == 18
    assert metrics["ongoing"] is False


def test_a_periodic_schedule_is_stored_once(make_sim: Any) -> None:
    sim = make_sim(seed=4, projects=1)
    body = {"schedule": {"type": "Daily", "cron": "0 0 0 * * *"}}
    assert httpx.post(sim.url + SCHEDULE, json=body, auth=sim.admin).status_code == 201
    assert httpx.post(sim.url + SCHEDULE, json=body, auth=sim.admin).status_code == 412
    got = httpx.get(sim.url + SCHEDULE, auth=sim.admin).json()
    assert got["schedule"] == {"type": "Daily", "cron": "0 0 0 * * *"}
    assert sim.control.scanner()["queued"] == 0
