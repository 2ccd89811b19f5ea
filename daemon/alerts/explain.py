"""Why each item is or is not in a message (``scanwatch alerts preview --explain``), pure.

For every event and failed scan the preview reads, the same stages as ``outbox.plan`` are
asked in order, and each says its word:

- first run: a registry's first-sight summaries are dropped in its first run;
- silence: the ignore rule (or Harbor allowlist) that hides it, with its reason;
- route: for each route in order, whether it took the item and for whom, or why not (a glob,
  the severity threshold, the event not in ``events``, an earlier route without ``continue``);
- cursor: the route already read that history row (it was queued before);
- dedup: the receiver was told this change of this finding already (the notification log), or
  the item would be sent, with its send reason (new, changed, escalation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from daemon.alerts.dedup import Log, dedup
from daemon.alerts.events import AlertItem, Item, change_of, finding_of, scope, severity
from daemon.alerts.route import _targets, route_items, route_keys
from daemon.config_types import RouteConfig
from daemon.ignores import IgnoreRules
from daemon.model import ChangeEvent


@dataclass(frozen=True, slots=True)
class Explanation:
    item: str  # "CVE-2024-1 openssl in payments/api: new (advisory_published), High"
    source: str  # "event 12", "scan 3"
    steps: tuple[tuple[str, str], ...]  # (stage, what it said)
    sent_to: tuple[str, ...]  # the receivers it would reach

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "source": self.source,
                "steps": [{"stage": s, "says": t} for s, t in self.steps],
                "sent_to": list(self.sent_to)}


def describe(item: AlertItem) -> str:
    registry, project, repository = scope(item)
    where = "/".join(p for p in (project, repository) if p) or registry
    kind, value = change_of(item)
    level = severity(item)
    if isinstance(item, ChangeEvent):
        k = item.finding
        n = item.count
        what = (f"{k.vulnerability} {k.package}".strip()
                or f"first sight of {n} finding{'s' if n != 1 else ''}")
        reason = item.reason.value + (f" → {value}" if value else "")
        return f"{what} in {where}: {item.kind.value} ({reason}), {level.label if level else ''}"
    return f"{kind} in {where}"


def _why_not(route: RouteConfig, item: AlertItem) -> str:
    registry, project, repository = scope(item)
    if not any(fnmatchcase(registry, g) for g in route.registries):
        return f"registry {registry} not in {list(route.registries)}"
    if project and not any(fnmatchcase(project, g) for g in route.projects):
        return f"project {project} not in {list(route.projects)}"
    if repository and not any(fnmatchcase(f"{project}/{repository}", g)
                              or fnmatchcase(repository, g) for g in route.repositories):
        return f"repository {project}/{repository} not in {list(route.repositories)}"
    level = severity(item)
    if level is not None and level < route.min_severity:
        return f"severity {level.label} below min_severity {route.min_severity.label}"
    return f"event {change_of(item)[0]} not in its events ({', '.join(route.events) or 'none'})"


def explain(
    items: Sequence[Item],
    routes: Sequence[RouteConfig],
    *,
    rules: IgnoreRules,
    notified: Log,
    cursors: Mapping[str, tuple[int, int, datetime | None]],
    quiet: frozenset[str],
    now: datetime,
) -> list[Explanation]:
    """One explanation per item, following the stages of ``outbox.plan``."""
    keys = route_keys(routes)
    out = []
    for origin in items:
        item = origin.item
        steps: list[tuple[str, str]] = []
        source = f"{origin.source} {origin.source_id}" if origin.source else "this run"
        sent: list[str] = []
        key = finding_of(item)
        if (isinstance(item, ChangeEvent) and not item.finding.vulnerability
                and item.finding.registry in quiet):
            steps.append(("first run", "dropped: the registry's first run announces nothing"))
        elif key is not None and rules.ignored(key, now):
            steps.append(("silence", f"silenced: {rules.reason(key, now)}"))
        else:
            steps.append(("silence", "no ignore rule matches"))
            stopped = ""
            for index, (rkey, route) in enumerate(zip(keys, routes, strict=True)):
                label = f"route {index + 1} {rkey}"
                if stopped:
                    steps.append((label, f"not tried: {stopped} has no continue"))
                    continue
                taken = route_items([origin], [route])
                if not taken:
                    steps.append((label, "does not take it: " + _why_not(route, item)))
                    continue
                plain, escalated = _targets(route, item)
                steps.append((label, f"takes it -> {', '.join([*plain, *escalated])}"))
                for rd in taken:
                    if rd.receiver in sent:
                        steps.append((rd.receiver, "already reached by an earlier route"))
                        continue
                    last_event, last_scan, _ = cursors.get(rkey, (0, 0, None))
                    read = last_event if rd.source == "event" else last_scan
                    if rd.source and rd.source_id <= read:
                        steps.append((rd.receiver, f"already queued (route {rkey} read "
                                                   f"{rd.source} {read})"))
                        continue
                    passed = dedup([rd], notified)
                    if not passed:
                        told = notified.get((rd.receiver, key), ()) if key else ()
                        when = max((t.at for t in told), default=None)
                        steps.append((rd.receiver, "told already (notification log"
                                      + (f", last {when:%Y-%m-%d %H:%M}" if when else "")
                                      + ")"))
                        continue
                    sent.append(rd.receiver)
                    steps.append((rd.receiver, f"would send ({passed[0].send_reason})"))
                if not route.continue_:
                    stopped = label
        out.append(Explanation(describe(item), source, tuple(steps), tuple(sent)))
    return out


def explain_lines(explanations: Sequence[Explanation]) -> list[str]:
    lines = []
    for e in explanations:
        lines.append(f"{e.item}  [{e.source}]")
        lines.extend(f"  {stage}: {says}" for stage, says in e.steps)
    return lines
