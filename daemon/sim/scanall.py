"""Harbor's Scan All (swagger ``scanAll``, API-NOTES §13): every artifact queued at once.

The state and the run live here; the endpoints in ``scanall_api.py``.

``POST /system/scanAll/schedule`` with ``{"schedule": {"type": "Manual"}}`` triggers a scan of
each top-level artifact, as Harbor's ``startScanAll`` does (409, 412 and 400 skipped and
counted); 409 while a manual execution is still going. A periodic type stores the schedule
(412 if one exists) without running it: the simulator has no cron. ``GET /scans/all/metrics``
reports the latest execution. Scans a scan-all started end with webhook events whose
``scan_overview`` is absent (goharbor/harbor#21005, #22212), so a receiver must read the truth
from the API.
"""

from __future__ import annotations

from typing import Any

from daemon.sim.engine import ScanError


class ScanAll:
    """The scan-all schedule and the latest execution's scans."""

    def __init__(self) -> None:
        self.schedule: dict[str, Any] | None = None
        self.scans: list[Any] = []
        self.skipped = 0
        self.created = 0.0


def run_now_state(state: Any) -> int:
    """Trigger every top-level artifact (the lock held); the number of scans started."""
    job = state.scan_all
    job.scans, job.skipped = [], 0
    for art in state.inventory.all_artifacts():
        if not art.top_level:
            continue
        try:
            scans = state.engine.trigger(art)
        except ScanError:
            job.skipped += 1
            continue
        for scan in scans:
            scan.by_scan_all = True
        job.scans.extend(scans)
    return len(job.scans)
