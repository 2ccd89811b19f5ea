"""The ``scanAll`` endpoints of swagger (system admin); the run itself is ``scanall.py``."""

from __future__ import annotations

import json
from typing import Any

from daemon.sim import render
from daemon.sim.api import ApiError, Request, Response, json_response
from daemon.sim.scanall import run_now_state

SCHEDULE = "/system/scanAll/schedule"
PERIODIC = ("Hourly", "Daily", "Weekly", "Custom", "Schedule")


def _ongoing(req: Request) -> bool:
    return any(s.status in ("Pending", "Running") for s in req.state.scan_all.scans)


def create_schedule(req: Request) -> Response:
    req.require_admin()
    if not req.state.scanner_registered:
        raise ApiError(412, "PRECONDITION", "no scanner is configured")
    try:
        body = json.loads(req.body or b"{}")
    except ValueError:
        raise ApiError(400, "BAD_REQUEST", "parsing schedule body failed") from None
    kind = str(((body or {}).get("schedule") or {}).get("type") or "")
    with req.state.lock:
        job = req.state.scan_all
        if kind == "Manual":
            if _ongoing(req):
                raise ApiError(409, "CONFLICT", "a previous scan all job is still running")
            job.created = req.state.wall()
            run_now_state(req.state)
        elif kind in PERIODIC:
            if job.schedule is not None:
                raise ApiError(412, "PRECONDITION", "a scan all schedule already exists")
            job.schedule = {"type": kind, "cron": body["schedule"].get("cron", "")}
            job.created = req.state.wall()
        elif kind != "None":
            raise ApiError(400, "BAD_REQUEST", f"invalid schedule type {kind!r}")
    return Response(201, headers=[("Location", SCHEDULE)])


def get_schedule(req: Request) -> Response:
    req.require_admin()
    job = req.state.scan_all
    if job.schedule is None:
        return Response(200, b"null", headers=[("Content-Type", "application/json")])
    return json_response({"id": 1, "status": "Scheduled",
                          "creation_time": render.ts(job.created),
                          "update_time": render.ts(job.created),
                          "schedule": job.schedule, "parameters": {}})


def metrics(req: Request) -> Response:
    req.require_admin()
    with req.state.lock:
        scans = req.state.scan_all.scans
        counts = {k: 0 for k in ("Pending", "Running", "Success", "Error", "Stopped")}
        for scan in scans:
            counts[scan.status] = counts.get(scan.status, 0) + 1
        ongoing = counts["Pending"] + counts["Running"] > 0
    if not scans:
        return json_response({"total": 0, "completed": 0, "ongoing": False})
    return json_response({"total": len(scans), "completed": len(scans) - counts["Pending"]
                          - counts["Running"], "metrics": counts, "ongoing": ongoing,
                          "trigger": "Manual"})


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", SCHEDULE, create_schedule), ("GET", SCHEDULE, get_schedule),
    ("GET", "/scans/all/metrics", metrics),
]
