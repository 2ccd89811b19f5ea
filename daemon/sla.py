"""Remediation deadlines per severity (the ``[sla]`` section). Pure: ``now`` is an argument.

A finding's deadline is its first sighting plus its severity's deadline; severities without one
are not tracked. It is overdue once ``now`` is past the deadline, and due soon when the deadline
is at most ``sla.due_soon`` away. Times must all be aware (UTC) or all naive, not a mix.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.config_types import SlaConfig
from daemon.model import Severity

_DAY = timedelta(days=1)


def deadlines(sla: SlaConfig) -> dict[Severity, timedelta]:
    """The configured time to fix, per severity (only the severities that have one)."""
    return {sev: span for sev, span in sla.deadlines.items() if span > timedelta(0)}


def deadline_for(severity: Severity, first_seen: datetime, sla: SlaConfig) -> datetime | None:
    """When a finding of ``severity`` first seen at ``first_seen`` must be fixed, if ever."""
    span = deadlines(sla).get(severity)
    return None if span is None else first_seen + span


@dataclass(frozen=True, slots=True)
class SlaItem:
    """One tracked finding against its deadline at the time of evaluation."""

    key: Hashable
    severity: Severity
    first_seen: datetime
    deadline: datetime
    age: timedelta  # now - first_seen
    remaining: timedelta  # deadline - now; negative once overdue

    @property
    def overdue(self) -> bool:
        return self.remaining < timedelta(0)

    @property
    def days_overdue(self) -> int:
        """Whole days past the deadline, rounded up (1 h late is 1 day late); 0 if not overdue."""
        return math.ceil(-self.remaining / _DAY) if self.overdue else 0

    @property
    def days_open(self) -> int:
        """Whole days since first seen, rounded down (as in "open 12 days")."""
        return self.age // _DAY


@dataclass(frozen=True, slots=True)
class SlaState:
    """Overdue findings (most overdue first) and the ones due soon (soonest first)."""

    overdue: tuple[SlaItem, ...]
    due_soon: tuple[SlaItem, ...]
    tracked: int  # findings whose severity has a deadline
    evaluated_at: datetime


def evaluate(
    findings_first_seen: Iterable[tuple[Hashable, Severity, datetime]],
    sla: SlaConfig,
    now: datetime,
) -> SlaState:
    """Place each open finding ``(key, severity, first_seen)`` against its severity's deadline.

    ``key`` is the caller's (a ``FindingKey`` usually) and comes back untouched. Findings whose
    severity has no deadline are ignored; a finding exactly at its deadline is due soon, not
    overdue. Ties sort by severity (Critical first), then by ``str(key)``.
    """
    spans = deadlines(sla)
    overdue: list[SlaItem] = []
    due_soon: list[SlaItem] = []
    tracked = 0
    for key, severity, first_seen in findings_first_seen:
        span = spans.get(severity)
        if span is None:
            continue
        tracked += 1
        deadline = first_seen + span
        item = SlaItem(key, severity, first_seen, deadline, now - first_seen, deadline - now)
        if item.overdue:
            overdue.append(item)
        elif item.remaining <= sla.due_soon:
            due_soon.append(item)
    overdue.sort(key=lambda i: (i.remaining, -i.severity, str(i.key)))
    due_soon.sort(key=lambda i: (i.remaining, -i.severity, str(i.key)))
    return SlaState(tuple(overdue), tuple(due_soon), tracked, now)
