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
from typing import Any

from daemon.alerts.dedup import Log, dedup
from daemon.alerts.events import AlertItem, Item, change_of, finding_of, scope, severity
from daemon.alerts.route import Delivery, route_keys, walk
from daemon.config_types import RouteConfig
from daemon.ignores import IgnoreRules
from daemon.model import ChangeEvent, ExploitInfo, FindingKey


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


def explain(
    items: Sequence[Item],
    routes: Sequence[RouteConfig],
    *,
    rules: IgnoreRules,
    notified: Log,
    cursors: Mapping[str, tuple[int, int, datetime | None]],
    quiet: frozenset[str],
    now: datetime,
    exploit: Mapping[str, ExploitInfo] | None = None,
) -> list[Explanation]:
    """One explanation per item, following the stages of ``outbox.plan``; the routing is
    ``route.walk``, the very function ``route_items`` routes with."""
    keys = route_keys(routes)
    labels = {key: f"route {index + 1} {key}" for index, key in enumerate(keys)}
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
            for step in walk(origin, routes, keys, exploit, every=True):
                label = labels[step.key]
                if step.stopped_by:
                    steps.append((label, f"not tried: {labels[step.stopped_by]} has no continue"))
                    continue
                if not step.taken:
                    steps.append((label, "does not take it: " + step.why_not))
                    continue
                names = [*(d.receiver for d in step.deliveries), *step.reached]
                steps.append((label, f"takes it -> {', '.join(names)}"))
                steps.extend((r, "already reached by an earlier route") for r in step.reached)
                for rd in step.deliveries:
                    steps.append(_admission(rd, key, cursors, notified, sent))
        out.append(Explanation(describe(item), source, tuple(steps), tuple(sent)))
    return out


def _admission(rd: Delivery, key: FindingKey | None,
               cursors: Mapping[str, tuple[int, int, datetime | None]], notified: Log,
               sent: list[str]) -> tuple[str, str]:
    """What the cursor and the notification log say of one delivery (``sent`` gains its
    receiver when it would go out)."""
    last_event, last_scan, _ = cursors.get(rd.route, (0, 0, None))
    read = last_event if rd.source == "event" else last_scan
    if rd.source and rd.source_id <= read:
        return rd.receiver, f"already queued (route {rd.route} read {rd.source} {read})"
    passed = dedup([rd], notified)
    if not passed:
        told = notified.get((rd.receiver, key), ()) if key else ()
        when = max((t.at for t in told), default=None)
        return rd.receiver, ("told already (notification log"
                             + (f", last {when:%Y-%m-%d %H:%M}" if when else "") + ")")
    sent.append(rd.receiver)
    return rd.receiver, f"would send ({passed[0].send_reason})"


def explain_lines(explanations: Sequence[Explanation]) -> list[str]:
    lines = []
    for e in explanations:
        lines.append(f"{e.item}  [{e.source}]")
        lines.extend(f"  {stage}: {says}" for stage, says in e.steps)
    return lines
