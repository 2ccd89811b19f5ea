"""The webhook endpoints of swagger's ``webhook`` tag (policies, executions), project admin only."""

from __future__ import annotations

import json
from typing import Any

from daemon.sim import render
from daemon.sim.api import ApiError, Request, Response, dumps, json_response
from daemon.sim.webhooks import EVENT_TYPES, Policy

POLICIES = "/projects/{project_name_or_id}/webhook/policies"
POLICY = POLICIES + "/{webhook_policy_id}"


def _render(policy: Policy) -> dict[str, Any]:
    body = policy.body
    return {"id": policy.id, "name": body.get("name", ""),
            "description": body.get("description", ""), "project_id": policy.project_id,
            "targets": body.get("targets") or [], "event_types": body.get("event_types") or [],
            "creator": "admin", "creation_time": render.ts(policy.creation_time),
            "update_time": render.ts(policy.update_time),
            "enabled": bool(body.get("enabled", False))}


def _body(req: Request) -> dict[str, Any]:
    try:
        body = json.loads(req.body or b"{}")
    except ValueError:
        raise ApiError(400, "BAD_REQUEST", "parsing policy body failed") from None
    if not isinstance(body, dict) or not body.get("name") or not body.get("targets"):
        raise ApiError(400, "BAD_REQUEST", "name and targets of the policy are required")
    unknown = [t for t in body.get("event_types") or [] if t not in EVENT_TYPES]
    if not body.get("event_types") or unknown:
        raise ApiError(400, "BAD_REQUEST", f"invalid event types {unknown}")
    return body


def _policy(req: Request) -> Policy:
    req.require_admin()
    project = req.project()
    raw = req.params["webhook_policy_id"]
    policy = req.state.webhooks.find(project, int(raw)) if raw.isdigit() else None
    if policy is None:
        raise ApiError(404, "NOT_FOUND", f"webhook policy {raw} not found")
    return policy


def list_policies(req: Request) -> Response:
    req.require_admin()
    chosen, headers = req.paginate(req.state.webhooks.of_project(req.project()))
    return Response(200, dumps([_render(p) for p in chosen]), headers=headers)


def create_policy(req: Request) -> Response:
    req.require_admin()
    project = req.project()
    body = _body(req)
    if any(p.body.get("name") == body["name"] for p in req.state.webhooks.of_project(project)):
        raise ApiError(409, "CONFLICT", f"webhook policy {body['name']} already exists")
    policy = req.state.webhooks.create(project, body)
    return Response(201, headers=[("Location", f"{req.path}/{policy.id}")])


def get_policy(req: Request) -> Response:
    return json_response(_render(_policy(req)))


def update_policy(req: Request) -> Response:
    policy = _policy(req)
    req.state.webhooks.update(policy, _body(req))
    return Response(200)


def delete_policy(req: Request) -> Response:
    req.state.webhooks.delete(_policy(req))
    return Response(200)


def list_executions(req: Request) -> Response:
    policy = _policy(req)
    with req.state.webhooks.lock:
        rows = [dict(e, start_time=render.ts(e["start_time"]),
                     end_time=render.ts(e["end_time"])) for e in reversed(policy.executions)]
    chosen, headers = req.paginate(rows)
    return Response(200, dumps(list(chosen)), headers=headers)


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", POLICIES, list_policies), ("POST", POLICIES, create_policy),
    ("GET", POLICY, get_policy), ("PUT", POLICY, update_policy),
    ("DELETE", POLICY, delete_policy), ("GET", POLICY + "/executions", list_executions),
]
