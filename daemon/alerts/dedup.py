"""Dedup: the notification log decides what each receiver has not been told yet (pure).

The log is keyed by (receiver, finding, change kind, changed value): the fix version of a
``fix_available``, the new severity of a ``severity_up``/``severity_down``, nothing for the
others. Findings are per repository but events come from per-image diffs, so when a
repository's images are rescanned in different runs (a ``max_scans`` budget, fetches caught up
later) the same change of the same finding is reported again; it reaches a receiver once.

The rules, per (receiver, finding), with "told" meaning logged or in a message still pending:

- ``new``, ``reopened``, ``fixed`` (the finding's state): told again only when the event is
  newer than the last time that kind was told (a finding fixed, reopened and fixed again is
  news each time; the store records each state change once per repository).
- a change with a value (fix, severity): a duplicate when the latest told change of the same
  family (the fix; the severity, up or down) carries the same value and the finding's state was
  not told since; so Medium → High after High → Medium is news again.
- ``sla_overdue``: once per state of the finding.
- ``known_exploited``: a change with a value, "listed" (``kev_added``, or ``in_kev`` when the
  finding arrived already in KEV) or "removed" (``kev_removed``): a finding listed on arrival
  is not told again when the feed lists it, and a removal after a listing is news.

Each delivery that passes gets its ``SendReason``: ``new`` (the receiver never heard of the
finding), ``changed``, ``reminder`` or ``escalation``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from daemon.alerts.events import REMINDER, AlertItem, change_of, event_name, finding_of
from daemon.alerts.route import Delivery
from daemon.model import ChangeEvent, FindingKey

STATE_KINDS = frozenset({"new", "reopened", "fixed"})


class SendReason(enum.Enum):
    NEW = "new"
    CHANGED = "changed"
    REMINDER = "reminder"
    ESCALATION = "escalation"


@dataclass(frozen=True, slots=True)
class Told:
    """One notification-log entry (or a pending message's item) for a receiver and finding."""

    kind: str
    value: str
    at: datetime


Log = Mapping[tuple[str, FindingKey], Sequence[Told]]


def _family(kind: str) -> str:
    return "severity" if kind in ("severity_up", "severity_down") else kind


def told_already(entries: Iterable[Told], item: AlertItem) -> bool:
    """The receiver was told this change of this finding (rules in the module docstring)."""
    kind, value = change_of(item)
    entries = list(entries)
    if kind in STATE_KINDS:
        last = max((e.at for e in entries if e.kind == kind), default=None)
        at = item.at if isinstance(item, ChangeEvent) else None
        return last is not None and (at is None or last >= at)
    family = [e for e in entries if _family(e.kind) == _family(kind)]
    if not family:
        return False
    latest = max(e.at for e in family)
    if any(e.kind in STATE_KINDS and e.at > latest for e in entries):
        return False  # the finding was fixed or reopened since: a new story
    return value in {e.value for e in family if e.at == latest}


def dedup(deliveries: Iterable[Delivery], log: Log) -> list[Delivery]:
    """The deliveries the receiver has not been told, each with its ``SendReason``.

    Reminders pass (``group.due_reminders`` decides them); items without a finding (scan
    problems, first-sight summaries) are not in the log and always pass. Within one batch
    every event passes: grouping merges what two images of one repository report, and keeps
    each installed version's own action.
    """
    out: list[Delivery] = []
    for d in deliveries:
        key = finding_of(d.item)
        if key is None or not key.vulnerability:
            out.append(replace(d, send_reason=SendReason.NEW.value))
            continue
        if event_name(d.item) == REMINDER:
            out.append(replace(d, send_reason=SendReason.REMINDER.value))
            continue
        entries = log.get((d.receiver, key), ())
        if told_already(entries, d.item):
            continue
        reason = (SendReason.ESCALATION if d.escalation
                  else SendReason.CHANGED if entries else SendReason.NEW)
        out.append(replace(d, send_reason=reason.value))
    return out
