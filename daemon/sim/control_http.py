"""``/_sim/``: the simulator's control endpoints (not Harbor; no auth; never in the statistics).

POST /_sim/push        {} | {"project", "repository", "tag", "base"?: "base/debian:12.7",
                        "report"?: Trivy report file name or path (its packages and CVEs)}
                       → {project, repository, digest, tag}  (a base-project push: a newer base)
GET  /_sim/lineage     [{project, repository, digest, tags, index, platform, base, external,
                       annotated, scanned}] truth (index children too)
POST /_sim/db-update   {} | {"added", "fix_released", "rescored"} (shares) → {added, fix_released,
                       rescored, db_updated_at}
POST /_sim/faults      {"faults": [FaultRule fields…]} (replaces; [] clears) ; GET lists them
POST /_sim/adapter     {"up": bool, "disabled"?: bool, "registered"?: bool}
POST /_sim/project     {"project", "public"?: bool}          (a public project: anonymous reads)
POST /_sim/robot       {"project", "expired"?: bool, "expires_at"?: unix | -1, "disabled"?: bool,
                       "pull"?: bool, "may_list_robots"?: bool}  (pull false: the robot reads
                       the API but pulls nothing; robot:list: it may read its own expiry)
POST /_sim/delete      {"project", "repository", "reference"}  → {deleted: [digests]}
GET  /_sim/auth        {locked: [user names locked by a failed login]}
POST /_sim/feeds       {"kev"?: path | "garbage", "epss"?: …}  (a new feed version; GET lists)
GET  /_sim/inventory   counts ; GET /_sim/stats ; POST /_sim/stats/reset
"""

from __future__ import annotations

import json
from typing import Any

from daemon.errors import ScanwatchError
from daemon.sim.api import Response, dumps, error_response
from daemon.sim.state import Control, SimState


def _body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


def handle_control(state: SimState, method: str, path: str, raw: bytes) -> Response:
    control = Control(state)
    try:
        body = _body(raw)
        result: Any
        if (method, path) == ("POST", "/_sim/push"):
            result = control.push(body.get("project"), body.get("repository"), body.get("tag"),
                                  body.get("base"), body.get("report"))
        elif (method, path) == ("GET", "/_sim/lineage"):
            result = control.lineage()
        elif (method, path) == ("POST", "/_sim/db-update"):
            shares = {k: float(body[k]) for k in ("added", "fix_released", "rescored") if k in body}
            result = control.db_update(**shares)
        elif (method, path) == ("POST", "/_sim/faults"):
            control.set_faults(body.get("faults", []))
            result = {"faults": control.faults()}
        elif (method, path) == ("GET", "/_sim/faults"):
            result = {"faults": control.faults()}
        elif (method, path) == ("POST", "/_sim/adapter"):
            if "up" in body:
                control.set_adapter(bool(body["up"]))
            control.set_scanner(registered=body.get("registered"), disabled=body.get("disabled"))
            result = {"up": control.adapter_up(), "registered": state.scanner_registered,
                      "disabled": state.scanner_disabled}
        elif (method, path) == ("POST", "/_sim/allowlist"):
            result = control.set_allowlist(body.get("project"), body.get("cve_ids", []),
                                           body.get("expires_at"), body.get("reuse_system"))
        elif (method, path) == ("POST", "/_sim/project"):
            result = control.set_project(str(body.get("project", "")), public=body.get("public"))
        elif (method, path) == ("POST", "/_sim/robot"):
            result = control.set_robot(str(body.get("project", "")),
                                       expires_at=body.get("expires_at"),
                                       expired=body.get("expired"), disabled=body.get("disabled"),
                                       pull=body.get("pull"),
                                       may_list_robots=body.get("may_list_robots"))
        elif (method, path) == ("POST", "/_sim/delete"):
            result = control.delete(str(body.get("project", "")), str(body.get("repository", "")),
                                    str(body.get("reference", "")))
        elif (method, path) == ("POST", "/_sim/feeds"):
            for name, source in body.items():
                state.feeds.swap(str(name), str(source))
            result = state.feeds.state()
        elif (method, path) == ("GET", "/_sim/feeds"):
            result = state.feeds.state()
        elif (method, path) == ("GET", "/_sim/auth"):
            result = control.auth()
        elif (method, path) == ("GET", "/_sim/inventory"):
            result = control.inventory()
        elif (method, path) == ("GET", "/_sim/stats"):
            result = control.stats()
        elif (method, path) == ("POST", "/_sim/stats/reset"):
            control.reset_stats()
            result = control.stats()
        else:
            return error_response(404, "NOT_FOUND", f"no control endpoint {method} {path}")
    except (ValueError, TypeError, OSError, ScanwatchError) as exc:
        return error_response(400, "BAD_REQUEST", str(exc))
    return Response(200, dumps(result))
