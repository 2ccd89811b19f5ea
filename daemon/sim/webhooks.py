"""Harbor's project webhooks: policies and executions (swagger ``webhook``), and the sender.

Events are built as Harbor's ``notifier/model.Payload`` ("Default" format): PUSH_ARTIFACT with
resources (digest, tag, resource_url) and the repository; SCANNING_* with a resource's
``scan_overview`` keyed by the report mime type. Delivery follows Harbor's jobservice: up to
three attempts a few seconds apart, then the event is dropped; ``drop_share`` of events is lost
outright, as a Harbor under load loses them, so a receiver's safety net can be tested.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.sim.inventory import Artifact, Project

ATTEMPTS = 3
REPORT_MIME = "application/vnd.security.vulnerability.report; version=1.1"
EVENT_TYPES = ("PUSH_ARTIFACT", "SCANNING_COMPLETED", "SCANNING_FAILED", "SCANNING_STOPPED")


@dataclass
class Policy:
    id: int
    project_id: int
    body: dict[str, Any]
    creation_time: float
    update_time: float
    executions: list[dict[str, Any]] = field(default_factory=list)


def payload(kind: str, art: Artifact, wall: float, *, operator: str = "admin",
            overview: dict[str, Any] | None = None, registry: str = "harbor.example.test"
            ) -> dict[str, Any]:
    """One event about ``art`` as Harbor posts it; ``overview`` None omits ``scan_overview``
    (a scan-all event carries no scan detail, goharbor/harbor#21005)."""
    tag = art.tags[0].name if art.tags else ""
    ref = f":{tag}" if tag else f"@{art.digest}"
    resource: dict[str, Any] = {"digest": art.digest, "tag": tag,
                                "resource_url": f"{registry}/{art.repo.name}{ref}"}
    if overview is not None:
        resource["scan_overview"] = {REPORT_MIME: overview}
    project = art.project
    return {"type": kind, "occur_at": int(wall), "operator": operator,
            "event_data": {"resources": [resource],
                           "repository": {"date_created": int(project.creation_time),
                                          "name": art.repo.short, "namespace": project.name,
                                          "repo_full_name": art.repo.name,
                                          "repo_type": "public" if project.public
                                          else "private"}}}


class Webhooks:
    """Policies per project, their executions, and a sender thread (started on first use)."""

    def __init__(self, seed: int, wall: Callable[[], float], retry_delay: float,
                 drop_share: float) -> None:
        self.wall, self.retry_delay, self.drop_share = wall, retry_delay, drop_share
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.policies: list[Policy] = []
        self._next_policy = 1
        self._next_execution = 1
        self.sent = 0
        self.dropped = 0
        self._queue: queue.Queue[tuple[Policy, dict[str, Any], dict[str, Any]] | None] = \
            queue.Queue()
        self._thread: threading.Thread | None = None

    # ---- policies ------------------------------------------------------------------------------
    def of_project(self, project: Project) -> list[Policy]:
        with self.lock:
            return [p for p in self.policies if p.project_id == project.id]

    def find(self, project: Project, policy_id: int) -> Policy | None:
        return next((p for p in self.of_project(project) if p.id == policy_id), None)

    def create(self, project: Project, body: dict[str, Any]) -> Policy:
        with self.lock:
            policy = Policy(self._next_policy, project.id, body, self.wall(), self.wall())
            self._next_policy += 1
            self.policies.append(policy)
            return policy

    def update(self, policy: Policy, body: dict[str, Any]) -> None:
        with self.lock:
            policy.body, policy.update_time = body, self.wall()

    def delete(self, policy: Policy) -> None:
        with self.lock:
            self.policies = [p for p in self.policies if p is not policy]

    # ---- events --------------------------------------------------------------------------------
    def notify(self, kind: str, project: Project, event: dict[str, Any]) -> None:
        """Queue ``event`` for every enabled policy of ``project`` that subscribes to ``kind``."""
        for policy in self.of_project(project):
            if not policy.body.get("enabled", True) or kind not in policy.body.get(
                    "event_types", []):
                continue
            for target in policy.body.get("targets") or []:
                if target.get("type", "http") == "http" and target.get("address"):
                    self._start()
                    self._queue.put((policy, target, event))

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _start(self) -> None:
        with self.lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sim-webhooks",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            policy, target, event = item
            # Each delivery runs on its own thread, as jobservice's workers do: one slow
            # receiver never holds back another event.
            threading.Thread(target=self._deliver, args=(policy, target, event),
                             daemon=True).start()

    def _deliver(self, policy: Policy, target: dict[str, Any], event: dict[str, Any]) -> None:
        start = self.wall()
        with self.lock:
            execution: dict[str, Any] = {"id": self._next_execution, "vendor_type": "WEBHOOK",
                                         "vendor_id": policy.id, "status": "Running",
                                         "status_message": "", "trigger": "EVENT",
                                         "extra_attrs": {"event_type": event["type"],
                                                         "payload": json.dumps(event)},
                                         "start_time": start, "end_time": None}
            self._next_execution += 1
            policy.executions.append(execution)
            drop = self.rng.random() < self.drop_share
        error = "dropped by the simulator" if drop else self._post(target, event)
        with self.lock:
            execution["status"] = "Error" if error else "Success"
            execution["status_message"] = error or ""
            execution["end_time"] = self.wall()
            if error:
                self.dropped += 1
            else:
                self.sent += 1

    def _post(self, target: dict[str, Any], event: dict[str, Any]) -> str | None:
        data = json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        if target.get("auth_header"):
            headers["Authorization"] = str(target["auth_header"])
        error = None
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(self.retry_delay)
            request = urllib.request.Request(str(target["address"]), data=data,
                                             headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if 200 <= response.status < 300:
                        return None
                    error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                error = str(exc)
        return error
