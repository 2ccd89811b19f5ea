"""What alerting consumes: finding changes from history, overdue findings and scan problems.

A ``ChangeEvent`` (``daemon/model.py``) reports a finding that changed. Two more kinds of item
reach the routes: an SLA breach (``OverdueFinding``, from ``daemon/sla.py``'s evaluation) and a
scan that could not be trusted (``ScanProblem``). ``OpenFinding`` is a finding still open, used for
``repeat_open_every`` reminders and for warnings about ignores that are about to expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from daemon.model import ChangeEvent, ChangeKind, FindingKey, Reason, Severity

SCAN_FAILED = "scan_failed"
SCANNER_UNAVAILABLE = "scanner_unavailable"
SLA_OVERDUE = "sla_overdue"
REMINDER = "reminder"  # not a route event: a still-open finding re-sent by repeat_open_every


@dataclass(frozen=True, slots=True)
class OverdueFinding:
    """An open finding past its SLA deadline."""

    finding: FindingKey
    severity: Severity
    opened_at: datetime
    deadline: timedelta
    installed_version: str = ""
    fix_version: str = ""
    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    kev_due: date | None = None  # the deadline is CISA KEV's due date ([sla] kev_due_date)


@dataclass(frozen=True, slots=True)
class ScanProblem:
    """A scan that failed, or a scanner that is down (registry-wide: project and repository "")."""

    kind: str  # SCAN_FAILED or SCANNER_UNAVAILABLE
    registry: str
    project: str = ""
    repository: str = ""
    digest: str = ""
    tags: tuple[str, ...] = ()
    detail: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OpenFinding:
    """A finding that is still open, with what is known of it now."""

    finding: FindingKey
    severity: Severity
    opened_at: datetime | None = None
    installed_version: str = ""
    fix_version: str = ""
    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    kev_due: date | None = None  # its CVE's CISA KEV due date, where [sla] kev_due_date uses it
    cvss_v3: float | None = None
    cvss_vector: str = ""


@dataclass(frozen=True, slots=True)
class Reminder:
    """An open finding re-sent because ``repeat_open_every`` elapsed since it was last sent."""

    open: OpenFinding


AlertItem = ChangeEvent | OverdueFinding | ScanProblem | Reminder


@dataclass(frozen=True, slots=True)
class Item:
    """An alert item and the history row it came from: ``source`` "event" (a change event)
    or "scan" (a failed scan) with that row's id, or "" for what this run found (a scanner
    down, an SLA breach). Route cursors admit items by that id."""

    item: AlertItem
    source: str = ""
    source_id: int = 0


def event_name(item: AlertItem) -> str:
    """The route event name of an item (``config_types.EVENTS``, or ``reminder``)."""
    if isinstance(item, ChangeEvent):
        if item.kind is ChangeKind.SEVERITY_CHANGED:
            previous = item.previous_severity
            return "severity_down" if previous is not None and item.severity < previous else (
                "severity_up"
            )
        return str(item.kind.value)
    if isinstance(item, OverdueFinding):
        return SLA_OVERDUE
    if isinstance(item, ScanProblem):
        return item.kind
    return REMINDER


def change_of(item: AlertItem) -> tuple[str, str]:
    """(change kind as routes name it, the changed value) of an item: the notification log's
    key with the receiver and finding (``alerts/dedup.py``)."""
    kind = event_name(item)
    if isinstance(item, ChangeEvent):
        if kind == "fix_available":
            return kind, item.fix_version
        if kind in ("severity_up", "severity_down"):
            return kind, item.severity.label
        if kind == "known_exploited":  # listed (kev_added, or in_kev on arrival) or removed
            return kind, "removed" if item.reason is Reason.KEV_REMOVED else "listed"
    return kind, ""


def scope(item: AlertItem) -> tuple[str, str, str]:
    """(registry, project, repository) of an item; project and repository may be ""."""
    if isinstance(item, ScanProblem):
        return (item.registry, item.project, item.repository)
    key = item.open.finding if isinstance(item, Reminder) else item.finding
    return (key.registry, key.project, key.repository)


def severity(item: AlertItem) -> Severity | None:
    """The item's severity; ``None`` for scan problems, which no severity threshold filters."""
    if isinstance(item, ScanProblem):
        return None
    if isinstance(item, Reminder):
        return item.open.severity
    return item.severity


def finding_of(item: AlertItem | Item) -> FindingKey | None:
    if isinstance(item, Item):
        item = item.item
    if isinstance(item, ScanProblem):
        return None
    if isinstance(item, Reminder):
        return item.open.finding
    return item.finding
