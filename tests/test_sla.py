"""SLA deadlines per severity, counted from first sight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.config_types import SlaConfig
from daemon.model import Severity
from daemon.sla import deadline_for, evaluate

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
SLA = SlaConfig(
    deadlines={Severity.CRITICAL: timedelta(days=7), Severity.HIGH: timedelta(days=30)},
    due_soon=timedelta(days=3),
)


def ago(days: float = 0, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


@pytest.mark.parametrize(
    ("severity", "first_seen", "state", "days_overdue"),
    [
        (Severity.CRITICAL, ago(12), "overdue", 5),
        (Severity.CRITICAL, ago(7, 1), "overdue", 1),
        (Severity.CRITICAL, ago(7), "due_soon", 0),
        (Severity.CRITICAL, ago(4), "due_soon", 0),
        (Severity.CRITICAL, ago(3, 23), "ok", 0),
        (Severity.CRITICAL, ago(0), "ok", 0),
        (Severity.HIGH, ago(12), "ok", 0),
        (Severity.HIGH, ago(31), "overdue", 1),
        (Severity.HIGH, ago(28), "due_soon", 0),
        (Severity.MEDIUM, ago(400), "untracked", 0),
        (Severity.LOW, ago(400), "untracked", 0),
    ],
    ids=[
        "critical-open-12-days-is-5-days-overdue",
        "an-hour-late-counts-as-a-day",
        "exactly-at-the-deadline-is-due-soon-not-overdue",
        "critical-3-days-left-is-due-soon",
        "critical-just-outside-due-soon",
        "critical-just-seen",
        "high-within-30-days",
        "high-past-30-days",
        "high-2-days-left",
        "medium-has-no-deadline",
        "low-has-no-deadline",
    ],
)
def test_it_places_each_finding_against_its_deadline(
    severity: Severity, first_seen: datetime, state: str, days_overdue: int
) -> None:
    result = evaluate([("F", severity, first_seen)], SLA, NOW)
    got = (
        "overdue" if result.overdue else
        "due_soon" if result.due_soon else
        "ok" if result.tracked else "untracked"
    )
    assert got == state
    if result.overdue:
        assert result.overdue[0].days_overdue == days_overdue
        assert result.overdue[0].deadline == first_seen + SLA.deadlines[severity]


def test_it_orders_overdue_most_late_first_and_due_soon_soonest_first() -> None:
    findings = [
        ("a", Severity.HIGH, ago(31)),
        ("b", Severity.CRITICAL, ago(20)),
        ("c", Severity.CRITICAL, ago(8)),
        ("d", Severity.CRITICAL, ago(5)),
        ("e", Severity.CRITICAL, ago(6)),
        ("f", Severity.HIGH, ago(1)),
    ]
    result = evaluate(findings, SLA, NOW)
    assert [i.key for i in result.overdue] == ["b", "c", "a"]
    assert [i.key for i in result.due_soon] == ["e", "d"]
    assert result.tracked == 6
    assert result.overdue[0].days_open == 20


def test_it_tracks_nothing_without_deadlines() -> None:
    result = evaluate([("a", Severity.CRITICAL, ago(100))], SlaConfig(), NOW)
    assert (result.overdue, result.due_soon, result.tracked) == ((), (), 0)


def test_it_gives_the_deadline_of_a_severity() -> None:
    assert deadline_for(Severity.HIGH, ago(10), SLA) == ago(10) + timedelta(days=30)
    assert deadline_for(Severity.LOW, ago(10), SLA) is None
