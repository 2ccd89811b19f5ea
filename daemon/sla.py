"""Remediation deadlines per severity (the ``[sla]`` section). Pure: ``now`` is an argument.

A finding's deadline is its first sighting plus its severity's deadline; severities without one
are not tracked. With ``kev_due_date = true``, a finding whose CVE is in CISA KEV must be fixed
by the end of the catalog's ``dueDate`` (UTC) too: the earlier of the two deadlines holds, and a
KEV finding of an untracked severity is tracked by its due date alone. It is overdue once ``now``
is past the deadline, and due soon when the deadline is at most ``sla.due_soon`` away. Times
must all be aware (UTC) or all naive, not a mix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from daemon.config_types import SlaConfig
from daemon.model import Severity

_DAY = timedelta(days=1)


def deadlines(sla: SlaConfig) -> dict[Severity, timedelta]:
    """The configured time to fix, per severity (only the severities that have one)."""
    return {sev: span for sev, span in sla.deadlines.items() if span > timedelta(0)}


def kev_deadline(due: date, like: datetime) -> datetime:
    """The end of KEV's due date (midnight UTC after it), aware or naive as ``like`` is."""
    end = datetime.combine(due + _DAY, time(0))
    return end.replace(tzinfo=UTC) if like.tzinfo is not None else end


def deadline_for(severity: Severity, first_seen: datetime, sla: SlaConfig,
                 kev_due: date | None = None) -> datetime | None:
    """When a finding of ``severity`` first seen at ``first_seen`` must be fixed, if ever;
    ``kev_due`` is the KEV due date of its CVE (None: not in KEV), used when the policy says
    ``kev_due_date``."""
    return deadline_function(sla)(severity, first_seen, kev_due)


def deadline_function(sla: SlaConfig) -> Callable[[Severity, datetime, date | None],
                                                  datetime | None]:
    """``deadline_for`` under one policy, its spans worked out once (a listing asks it for
    every finding)."""
    spans = deadlines(sla)

    def deadline(severity: Severity, first_seen: datetime, kev_due: date | None = None
                 ) -> datetime | None:
        return _deadline(spans, severity, first_seen, sla, kev_due)[0]
    return deadline


def _deadline(spans: Mapping[Severity, timedelta], severity: Severity, first_seen: datetime,
              sla: SlaConfig, kev_due: date | None) -> tuple[datetime | None, date | None]:
    """(the deadline, the KEV due date when that is what sets it)."""
    span = spans.get(severity)
    by_severity = None if span is None else first_seen + span
    if kev_due is None or not sla.kev_due_date:
        return by_severity, None
    by_kev = kev_deadline(kev_due, first_seen)
    if by_severity is not None and by_severity <= by_kev:
        return by_severity, None
    return by_kev, kev_due


@dataclass(frozen=True, slots=True)
class SlaItem:
    """One tracked finding against its deadline at the time of evaluation."""

    key: Hashable
    severity: Severity
    first_seen: datetime
    deadline: datetime
    age: timedelta  # now - first_seen
    remaining: timedelta  # deadline - now; negative once overdue
    kev_due: date | None = None  # set when the deadline is CISA KEV's due date

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
    kev_due: Mapping[Hashable, date] | None = None,
) -> SlaState:
    """Place each open finding ``(key, severity, first_seen)`` against its deadline.

    ``key`` is the caller's (a ``FindingKey`` usually) and comes back untouched; ``kev_due``
    gives, by key, the KEV due date of the findings whose CVE is in KEV (read only with
    ``sla.kev_due_date``). Findings with no deadline are ignored; a finding exactly at its
    deadline is due soon, not overdue. Ties sort by severity (Critical first), then by
    ``str(key)``.
    """
    spans = deadlines(sla)
    dues = kev_due if kev_due is not None and sla.kev_due_date else {}
    overdue: list[SlaItem] = []
    due_soon: list[SlaItem] = []
    tracked = 0
    for key, severity, first_seen in findings_first_seen:
        deadline, by_kev = _deadline(spans, severity, first_seen, sla, dues.get(key))
        if deadline is None:
            continue
        tracked += 1
        item = SlaItem(key, severity, first_seen, deadline, now - first_seen, deadline - now,
                       by_kev)
        if item.overdue:
            overdue.append(item)
        elif item.remaining <= sla.due_soon:
            due_soon.append(item)
    overdue.sort(key=lambda i: (i.remaining, -i.severity, str(i.key)))
    due_soon.sort(key=lambda i: (i.remaining, -i.severity, str(i.key)))
    return SlaState(tuple(overdue), tuple(due_soon), tracked, now)
