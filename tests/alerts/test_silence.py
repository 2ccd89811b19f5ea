from __future__ import annotations

from datetime import date, timedelta

import pytest
from alertkit import NOW, event

from daemon.alerts.events import OpenFinding, ScanProblem
from daemon.alerts.silence import apply_silences, expiry_warnings
from daemon.config_types import IgnoreConfig
from daemon.ignores import IgnoreRules
from daemon.model import CveAllowlist, FindingKey, Severity

LATER = date(2027, 1, 31)


@pytest.mark.parametrize(
    ("rule", "silenced"),
    [
        (IgnoreConfig("disabled feature", LATER, vulnerability="CVE-2024-0001"), True),
        (IgnoreConfig("disabled feature", LATER, vulnerability="cve-2024-0001"), True),
        (IgnoreConfig("other", LATER, vulnerability="CVE-2024-9999"), False),
        (IgnoreConfig("pkg", LATER, package="openssl"), True),
        (IgnoreConfig("pkg", LATER, package="glibc"), False),
        (IgnoreConfig("scoped", LATER, vulnerability="CVE-2024-0001",
                      repositories=("legacy/*",)), False),
        (IgnoreConfig("scoped", LATER, vulnerability="CVE-2024-0001", projects=("pay*",)), True),
        (IgnoreConfig("expired", date(2026, 11, 1), vulnerability="CVE-2024-0001"), False),
        (IgnoreConfig("last day", date(2026, 11, 2), vulnerability="CVE-2024-0001"), True),
    ],
    ids=["exact-id", "id-any-case", "other-id", "package", "other-package",
         "repository-glob-misses", "project-glob-hits", "expired-yesterday",
         "active-through-expiry-day"],
)
def test_it_silences_events_covered_by_an_active_rule(rule, silenced):  # type: ignore[no-untyped-def]
    kept, hidden = apply_silences([event()], IgnoreRules((rule,)), NOW)
    assert (len(hidden), len(kept)) == ((1, 0) if silenced else (0, 1))


def test_it_silences_harbor_allowlisted_ids_per_project_and_system():
    items = [event("CVE-A"), event("CVE-B"), event("CVE-C", project="web")]
    allow = (CveAllowlist("prod-harbor", frozenset({"CVE-A"})),
             CveAllowlist("prod-harbor", frozenset({"CVE-B", "CVE-C"}), project="payments"))
    kept, hidden = apply_silences(items, IgnoreRules((), allow), NOW)
    assert [e.finding.vulnerability for e in kept] == ["CVE-C"]  # type: ignore[union-attr]
    assert len(hidden) == 2


def test_it_keeps_scan_problems_loud_under_a_rule_that_matches_everything():
    problem = ScanProblem("scan_failed", "prod-harbor", "payments", "api")
    kept, hidden = apply_silences([event(), problem],
                                  IgnoreRules((IgnoreConfig("all", LATER, vulnerability="*"),)),
                                  NOW)
    assert kept == [problem] and len(hidden) == 1


def test_the_rules_in_force_decide_not_the_mark_an_event_was_recorded_with():
    # The rule that hid this event when it was recorded has been removed from the config.
    kept, hidden = apply_silences([event(ignored=True)], IgnoreRules(), NOW)
    assert len(kept) == 1 and hidden == []


def _open(vuln: str, repo: str) -> OpenFinding:
    return OpenFinding(FindingKey("prod-harbor", "payments", repo, vuln, "openssl"), Severity.HIGH)


def test_it_warns_a_week_before_ignores_expire_with_the_images_that_will_alert():
    soon = date(2026, 11, 6)
    rules = [IgnoreConfig("a", soon, vulnerability="CVE-1"),
             IgnoreConfig("b", soon, vulnerability="CVE-2"),
             IgnoreConfig("c", date(2026, 11, 9), vulnerability="CVE-3"),
             IgnoreConfig("far", LATER, vulnerability="CVE-4"),
             IgnoreConfig("keeps", LATER, vulnerability="CVE-2", repositories=("web",))]
    findings = [_open("CVE-1", "api"), _open("CVE-1", "worker"), _open("CVE-2", "web"),
                _open("CVE-3", "batch"), _open("CVE-3", "api"), _open("CVE-4", "api"),
                _open("CVE-9", "cron")]
    warning = expiry_warnings(IgnoreRules(tuple(rules)), findings, NOW)
    assert warning is not None
    assert warning.images == ("payments/api", "payments/batch", "payments/worker")
    assert warning.text == "3 ignores expire in 7 days: these 3 images will alert again"


def test_it_does_not_warn_when_nothing_expires_within_the_week():
    rules = [IgnoreConfig("far", LATER, vulnerability="CVE-1")]
    assert expiry_warnings(IgnoreRules(tuple(rules)), [_open("CVE-1", "api")], NOW,
                           timedelta(days=7)) is None
