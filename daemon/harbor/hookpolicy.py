"""The webhook policy scanwatch wants in each Harbor project, and what Harbor has instead.

``scanwatch webhook setup`` reads each project's policies, decides per project (``plan``, pure)
whether ours is missing (create), different (update: its address, events, secret, enabled flag
or TLS check moved) or as wanted (nothing), and writes only what differs: run twice, it writes
once. Ours is the policy named :data:`POLICY_NAME`, else the one whose target is our URL (a
policy made by hand for the same endpoint is taken over, not doubled).

The secret is the registry's ``webhook_secret``: Harbor sends it as the ``Authorization``
header, the daemon compares it in constant time. It is compared here the same way and never
printed: a plan says "secret differs", not what either one is.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from daemon.harbor.wire import parse_time

POLICY_NAME = "scanwatch"
EVENT_TYPES = ("PUSH_ARTIFACT", "SCANNING_COMPLETED", "SCANNING_FAILED", "SCANNING_STOPPED")


@dataclass(frozen=True)
class Target:
    address: str
    auth_header: str
    skip_cert_verify: bool


@dataclass(frozen=True)
class Policy:
    id: int
    name: str
    enabled: bool
    event_types: tuple[str, ...]
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Execution:
    id: int
    status: str
    event_type: str
    started: datetime | None
    message: str


@dataclass(frozen=True)
class Plan:
    """What setup does in one project: ``create``, ``update`` (policy ``policy_id``) or
    ``none``, and why."""

    project: str
    action: str
    policy_id: int = 0
    changes: tuple[str, ...] = ()


def policy(body: Any) -> Policy:
    data = body if isinstance(body, Mapping) else {}
    targets = tuple(
        Target(str(t.get("address") or ""), str(t.get("auth_header") or ""),
               bool(t.get("skip_cert_verify")))
        for t in data.get("targets") or [] if isinstance(t, Mapping))
    return Policy(int(data.get("id") or 0), str(data.get("name") or ""),
                  bool(data.get("enabled")), tuple(str(e) for e in data.get("event_types") or []),
                  targets)


def execution(body: Any) -> Execution:
    data = body if isinstance(body, Mapping) else {}
    extra = data.get("extra_attrs")
    extra = extra if isinstance(extra, Mapping) else {}
    return Execution(int(data.get("id") or 0), str(data.get("status") or ""),
                     str(extra.get("event_type") or ""), parse_time(data.get("start_time")),
                     str(data.get("status_message") or ""))


def wanted_body(url: str, secret: str, *, skip_cert_verify: bool = False) -> dict[str, Any]:
    """The policy as Harbor's API takes it (swagger ``WebhookPolicy``)."""
    return {"name": POLICY_NAME,
            "description": "scanwatch: push and scan events to its fast path",
            "enabled": True, "event_types": list(EVENT_TYPES),
            "targets": [{"type": "http", "address": url, "auth_header": secret,
                         "skip_cert_verify": skip_cert_verify, "payload_format": "Default"}]}


def ours(policies: Sequence[Policy], url: str) -> Policy | None:
    named = [p for p in policies if p.name == POLICY_NAME]
    if named:
        return named[0]
    return next((p for p in policies if any(t.address == url for t in p.targets)), None)


def plan(project: str, policies: Sequence[Policy], url: str, secret: str, *,
         skip_cert_verify: bool = False) -> Plan:
    found = ours(policies, url)
    if found is None:
        return Plan(project, "create", changes=("no scanwatch policy",))
    changes: list[str] = []
    if not found.enabled:
        changes.append("disabled")
    missing = [e for e in EVENT_TYPES if e not in found.event_types]
    if missing:
        changes.append("events missing: " + ", ".join(missing))
    if len(found.targets) != 1 or found.targets[0].address != url:
        changes.append("address differs")
    target = found.targets[0] if found.targets else Target("", "", False)
    if not hmac.compare_digest(target.auth_header.encode(), secret.encode()):
        changes.append("secret differs")
    if target.skip_cert_verify != skip_cert_verify:
        changes.append("TLS check differs")
    if found.name != POLICY_NAME:
        changes.append(f"named {found.name!r}")
    return Plan(project, "update" if changes else "none", found.id, tuple(changes))
