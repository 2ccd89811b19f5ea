"""The dedup stage: the notification log keyed by (receiver, finding, change kind, value)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alertkit import NOW, event

from daemon.alerts.dedup import Told, dedup, told_already
from daemon.alerts.events import OpenFinding, OverdueFinding, Reminder
from daemon.alerts.route import Delivery
from daemon.model import ChangeKind, Reason, Severity

EARLIER = NOW - timedelta(days=1)
KEY = event().finding
FIX = event(kind=ChangeKind.FIX_AVAILABLE, reason=Reason.FIX_RELEASED, fix="3.0.15")
UP = event(kind=ChangeKind.SEVERITY_CHANGED, reason=Reason.RESCORED, severity=Severity.HIGH,
           previous=Severity.MEDIUM)
DOWN = event(kind=ChangeKind.SEVERITY_CHANGED, reason=Reason.RESCORED,
             severity=Severity.MEDIUM, previous=Severity.HIGH)
OVERDUE = OverdueFinding(KEY, Severity.HIGH, NOW - timedelta(days=30), timedelta(days=7))


@pytest.mark.parametrize(
    ("told", "item", "expected"),
    [
        ([], FIX, False),
        ([Told("fix_available", "3.0.15", EARLIER)], FIX, True),
        ([Told("fix_available", "3.0.14", EARLIER)], FIX, False),
        ([Told("fix_available", "3.0.15", EARLIER - timedelta(hours=1)),
          Told("fix_available", "3.0.16", EARLIER)], FIX, False),
        ([Told("fix_available", "3.0.15", EARLIER - timedelta(hours=1)),
          Told("reopened", "", EARLIER)], FIX, False),
        ([Told("fix_available", "3.0.15", EARLIER), Told("new", "", EARLIER)], FIX, True),
        ([Told("severity_up", "High", EARLIER)], UP, True),
        ([Told("severity_up", "High", EARLIER - timedelta(hours=1)),
          Told("severity_down", "Medium", EARLIER)], UP, False),
        ([Told("severity_down", "Medium", EARLIER)], DOWN, True),
        ([Told("new", "", EARLIER)], event(at=NOW), False),
        ([Told("new", "", NOW)], event(at=EARLIER), True),
        ([Told("fixed", "", EARLIER)], event(kind=ChangeKind.NEW, at=NOW), False),
        ([Told("sla_overdue", "", EARLIER)], OVERDUE, True),
        ([Told("sla_overdue", "", EARLIER - timedelta(hours=1)), Told("reopened", "", EARLIER)],
         OVERDUE, False),
    ],
    ids=["never-told", "same-fix-told", "other-fix-told", "fix-superseded-by-another",
         "fix-before-a-reopen", "same-message-as-new", "same-severity-told",
         "rescored-back-and-forth", "down-told", "new-after-older-send",
         "new-older-than-its-send", "new-after-fixed", "overdue-told-once",
         "overdue-again-after-reopen"],
)
def test_it_decides_whether_a_change_was_told(told, item, expected):  # type: ignore[no-untyped-def]
    assert told_already(told, item) is expected


def test_it_gives_each_delivery_its_send_reason():
    fix = Delivery("a", "r", FIX)
    other = Delivery("b", "r", FIX)
    escalated = Delivery("c", "r", OVERDUE, escalation=True)
    reminder = Delivery("a", "r", Reminder(OpenFinding(KEY, Severity.HIGH)))
    log = {("a", KEY): [Told("new", "", EARLIER)]}
    out = dedup([fix, other, escalated, reminder], log)
    assert [(d.receiver, d.send_reason) for d in out] == [
        ("a", "changed"), ("b", "new"), ("c", "escalation"), ("a", "reminder")]


def test_it_drops_a_change_the_receiver_was_told_and_keeps_it_for_another():
    log = {("a", KEY): [Told("fix_available", "3.0.15", EARLIER)]}
    out = dedup([Delivery("a", "r", FIX), Delivery("b", "r", FIX)], log)
    assert [d.receiver for d in out] == ["b"]


def test_it_keeps_every_installed_version_of_one_batch():
    one = event(kind=ChangeKind.FIX_AVAILABLE, reason=Reason.FIX_RELEASED, installed="1.0")
    two = event(kind=ChangeKind.FIX_AVAILABLE, reason=Reason.FIX_RELEASED, installed="1.1")
    assert len(dedup([Delivery("a", "r", one), Delivery("a", "r", two)], {})) == 2
