"""``GET /robots`` as Harbor serves it (``src/server/v2.0/handler/robot.go`` ListRobot).

Each project's ``robot$<project>+scanwatch`` is a project-level robot (Harbor stores its name
without the ``robot$`` prefix: ``q=name=<project>+scanwatch`` finds it). The ``q`` keywords
``Level`` (``system`` when absent) and, for ``project``, ``ProjectID`` choose which robots are
listed, and the caller needs the ``robot:list`` permission at that level: admin has it, a
project robot only in its own project and only where it was granted it (``/_sim/robot
{"may_list_robots": true}``; the permissions scanwatch needs do not include it). Anyone else
gets 403, an anonymous caller 401. ``expires_at`` is Unix seconds, -1 for never.
"""

from __future__ import annotations

import math
from typing import Any

from daemon.sim import render
from daemon.sim.api import ApiError, Request, Response, dumps
from daemon.sim.auth import ROBOT_PREFIX, Robot, robot_name
from daemon.sim.inventory import Project

ACCESS = (("repository", "list"), ("repository", "pull"), ("artifact", "list"),
          ("artifact", "read"), ("scan", "create"), ("scan", "read"), ("scan", "stop"),
          ("scanner", "read"), ("project", "read"))


def _render(p: Project) -> dict[str, Any]:
    expires = int(p.robot_expires_at)
    days = -1 if expires == -1 else max(1, math.ceil((expires - p.creation_time) / 86400))
    access = list(ACCESS) + ([("robot", "list")] if p.robot_may_list else [])
    return {"id": p.id, "name": robot_name(p), "description": "scanwatch", "level": "project",
            "duration": days, "editable": True, "disable": p.robot_disabled,
            "expires_at": expires,
            "permissions": [{"kind": "project", "namespace": p.name,
                             "access": [{"resource": r, "action": a} for r, a in access]}],
            "creator_type": "local", "creator_ref": 1,
            "creation_time": render.ts(p.creation_time),
            "update_time": render.ts(p.creation_time)}


def _project_id(terms: dict[str, Any]) -> int:
    if "ProjectID" not in terms:
        raise ApiError(400, "BAD_REQUEST", "must with project ID when to query project robots")
    value = terms["ProjectID"]
    if not isinstance(value, int) or value <= 0:
        raise ApiError(400, "BAD_REQUEST", "ProjectID must be a positive integer")
    return value


def list_robots(req: Request) -> Response:
    req.require_auth()
    terms = {key: want for key, op, want in req.q() if op == "exact"}
    level = str(terms.get("Level", "system"))
    if level not in ("system", "project"):
        raise ApiError(400, "BAD_REQUEST", "bad request error level input")
    projects = req.state.inventory.projects
    if level == "system":  # requireAccess: system robot:list, which only admin has here
        if req.principal != "admin":
            raise ApiError(403, "FORBIDDEN", "forbidden")
        robots: list[Project] = []  # the simulator has project robots only
    else:
        pid = _project_id(terms)
        found = [p for p in projects if p.id == pid]
        caller = req.principal
        allowed = caller == "admin" or (
            isinstance(caller, Robot) and bool(found) and caller.project == found[0].name
            and found[0].robot_may_list)
        if not allowed:
            raise ApiError(403, "FORBIDDEN", "forbidden")
        robots = found
    name = terms.get("name")
    if name is not None:  # the stored name, without the prefix
        robots = [p for p in robots if robot_name(p) == ROBOT_PREFIX + str(name)]
    chosen, headers = req.paginate(robots)
    return Response(200, dumps([_render(p) for p in chosen]), headers=headers)


ROUTES: list[tuple[str, str, Any]] = [("GET", "/robots", list_robots)]
