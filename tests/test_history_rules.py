"""The history rules of daemon/diff.py, the ones the store runs: apply_scan, retire and
reconcile_ignores decide every change kind and reason; the store only loads and writes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from daemon.config_types import IgnoreConfig
from daemon.diff import (
    Departure,
    FindingWrite,
    Outcome,
    Repository,
    ScanFacts,
    StoredFinding,
    Write,
    apply_scan,
    diff_scan,
    reconcile_ignores,
    retire,
)
from daemon.ignores import NO_RULES, IgnoreRules
from daemon.model import Occurrence, Severity

H, C, M = Severity.HIGH, Severity.CRITICAL, Severity.MEDIUM
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
REPO = Repository("prod", "payments", "api")


def occ(spec: str) -> Occurrence:
    """``CVE-1:openssl:1.0[:fix[:severity]]``."""
    parts = spec.split(":") + ["", ""]
    return Occurrence(parts[0], parts[1], parts[2], parts[3], Severity.parse(parts[4] or "High"))


def occs(*specs: str) -> list[Occurrence]:
    return sorted((occ(s) for s in specs), key=lambda o: o.key)


def stored(key: str, *, fix: str = "", sev: Severity = H, versions: str = "1.0",
           resolved: bool = False, ignored: str = "", fid: int = 1) -> tuple[tuple[str, str],
                                                                      StoredFinding]:
    vuln, pkg = key.split(":")
    return (vuln, pkg), StoredFinding(fid, sev, fix, versions, resolved, bool(ignored), ignored)


def events(outcome: Outcome) -> list[tuple[str, str, str, str, str, str]]:
    return [(e.kind.value, e.reason.value, e.key[0], e.installed, e.fix,
             e.previous_severity.label if e.previous_severity is not None else "")
            for e in outcome.events]


def writes(outcome: Outcome) -> list[tuple[str, str, str]]:
    return [(w.op.value, w.key[0], w.resolved_reason.value if w.resolved_reason else "")
            for w in outcome.writes]


def scan(current: list[Occurrence], baseline: list[Occurrence] | None, *, same: bool,
         findings: dict[tuple[str, str], StoredFinding], first_sight: bool = False,
         superseded: tuple[frozenset[tuple[str, str]], ...] = (),
         carried: frozenset[tuple[str, str]] = frozenset(),
         rules: IgnoreRules = NO_RULES) -> Outcome:
    found = diff_scan(current, baseline, same_digest=same, superseded=superseded)
    open_keys = {k for k, f in findings.items() if not f.resolved}
    facts = ScanFacts(REPO, "sha256:new", same, first_sight,
                      ("sha256:old",) if superseded else ())
    return apply_scan(facts, found, findings, open_keys, carried, rules, NOW)


CASES = [
    pytest.param(
        occs("CVE-1:openssl:1.0"), [], True, {}, False, (), frozenset(),
        [("new", "advisory_published", "CVE-1", "1.0", "", "")], [("insert", "CVE-1", "")],
        id="rescan-new-cve-is-advisory_published"),
    pytest.param(
        occs("CVE-1:openssl:1.0"), occs(), False, {}, False, (), frozenset(),
        [("new", "new_image", "CVE-1", "1.0", "", "")], [("insert", "CVE-1", "")],
        id="push-new-cve-is-new_image"),
    pytest.param(
        occs("CVE-1:openssl:1.0", "CVE-2:zlib:1.0"), None, False, {}, True, (), frozenset(),
        [("new", "first_sight", "", "", "", "")],
        [("insert", "CVE-1", ""), ("insert", "CVE-2", "")],
        id="first-sight-is-one-summary"),
    pytest.param(
        occs("CVE-1:openssl:1.0"), None, False, dict([stored("CVE-1:openssl")]), False, (),
        frozenset(), [], [], id="no-baseline-in-a-known-repository-announces-only-new"),
    pytest.param(
        occs("CVE-1:openssl:1.0", "CVE-9:zlib:1.0"), None, False,
        dict([stored("CVE-1:openssl")]), False, (), frozenset(),
        [("new", "new_image", "CVE-9", "1.0", "", "")], [("insert", "CVE-9", "")],
        id="new-tag-announces-what-the-repository-lacked"),
    pytest.param(
        occs(), occs("CVE-1:openssl:1.0"), True, dict([stored("CVE-1:openssl")]), False, (),
        frozenset(), [("fixed", "advisory_withdrawn", "CVE-1", "1.0", "", "")],
        [("resolve", "CVE-1", "advisory_withdrawn")], id="rescan-without-it-is-withdrawn"),
    pytest.param(
        occs(), occs("CVE-1:openssl:1.0"), True, dict([stored("CVE-1:openssl")]), False, (),
        frozenset({("CVE-1", "openssl")}), [], [],
        id="withdrawn-but-another-image-carries-it"),
    pytest.param(
        occs("CVE-2:zlib:1.0"), occs("CVE-1:openssl:1.0", "CVE-2:zlib:1.0"), False,
        dict([stored("CVE-1:openssl"), stored("CVE-2:zlib", fid=2)]), False,
        (frozenset({("CVE-1", "openssl"), ("CVE-2", "zlib")}),), frozenset(),
        [("fixed", "fixed_by_rebuild", "CVE-1", "1.0", "", "")],
        [("resolve", "CVE-1", "fixed_by_rebuild")], id="rebuild-without-it-fixes-by-rebuild"),
    pytest.param(
        occs("CVE-1:openssl:1.1"), occs("CVE-1:openssl:1.0"), False,
        dict([stored("CVE-1:openssl")]), False, (frozenset({("CVE-1", "openssl")}),),
        frozenset(), [], [], id="rebuild-carrying-it-at-another-version-is-not-new"),
    pytest.param(
        occs("CVE-1:openssl:1.0:1.1"), occs("CVE-1:openssl:1.0"), True,
        dict([stored("CVE-1:openssl")]), False, (), frozenset(),
        [("fix_available", "fix_released", "CVE-1", "1.0", "1.1", "")],
        [("update", "CVE-1", "")], id="fix-released"),
    pytest.param(
        occs("CVE-1:openssl:1.0:1.1"), occs("CVE-1:openssl:1.0"), True,
        dict([stored("CVE-1:openssl", fix="1.1")]), False, (), frozenset(), [], [],
        id="fix-already-known-from-another-image"),
    pytest.param(
        occs("CVE-1:openssl:1.0::Critical"), occs("CVE-1:openssl:1.0::Medium"), True,
        dict([stored("CVE-1:openssl", sev=M)]), False, (), frozenset(),
        [("severity_changed", "rescored", "CVE-1", "1.0", "", "Medium")],
        [("update", "CVE-1", "")], id="rescored-up"),
    pytest.param(
        occs("CVE-1:openssl:1.0::Critical"), occs("CVE-1:openssl:1.0::Medium"), True,
        dict([stored("CVE-1:openssl", sev=C)]), False, (), frozenset(), [], [],
        id="rescore-already-recorded-from-another-image"),
    pytest.param(
        occs("CVE-1:openssl:1.0"), occs(), True,
        dict([stored("CVE-1:openssl", resolved=True)]), False, (), frozenset(),
        [("reopened", "reopened", "CVE-1", "1.0", "", "High")], [("reopen", "CVE-1", "")],
        id="resolved-and-back-is-reopened"),
    pytest.param(
        occs("CVE-1:openssl:1.0:1.0.1", "CVE-1:openssl:2.0:2.0.3"), occs(), False, {}, False,
        (), frozenset(),
        [("new", "new_image", "CVE-1", "1.0", "1.0.1", ""),
         ("new", "new_image", "CVE-1", "2.0", "2.0.3", "")],
        [("insert", "CVE-1", "")], id="one-event-per-installed-version-with-its-fix"),
]


@pytest.mark.parametrize(
    ("current", "baseline", "same", "findings", "first_sight", "superseded", "carried",
     "expected_events", "expected_writes"), CASES)
def test_apply_scan_decides_each_change(  # type: ignore[no-untyped-def]
        current, baseline, same, findings, first_sight, superseded, carried, expected_events,
        expected_writes):
    outcome = scan(current, baseline, same=same, findings=findings, first_sight=first_sight,
                   superseded=superseded, carried=carried)
    assert events(outcome) == expected_events
    assert writes(outcome) == expected_writes


def test_a_finding_carried_at_two_versions_gets_the_fix_that_covers_both() -> None:
    outcome = scan(occs("CVE-1:openssl:1.0:1.0.5", "CVE-1:openssl:1.1:1.1.2"), [], same=True,
                   findings={})
    (write,) = outcome.writes
    assert (write.fix_version, write.installed_versions) == ("1.1.2", "1.0, 1.1")


def test_new_findings_are_marked_by_the_rules_in_force() -> None:
    rules = IgnoreRules((IgnoreConfig("not reachable", date(2026, 6, 1), package="zlib"),))
    outcome = scan(occs("CVE-1:openssl:1.0", "CVE-2:zlib:1.0"), [], same=True, findings={},
                   rules=rules)
    assert [(w.key[1], w.ignore_reason) for w in outcome.writes] == [
        ("openssl", ""), ("zlib", "not reachable (ignored until 2026-06-01)")]
    assert [(e.key[1], e.ignored) for e in outcome.events] == [
        ("openssl", False), ("zlib", True)]


@pytest.mark.parametrize(("tag_taken", "carried", "expected"), [
    pytest.param(False, frozenset(), [("fixed", "image_removed", "CVE-1", "1.0", "", "")],
                 id="deleted-image"),
    pytest.param(True, frozenset(), [("fixed", "fixed_by_rebuild", "CVE-1", "1.0", "", "")],
                 id="tag-moved-to-a-scanned-rebuild"),
    pytest.param(False, frozenset({("CVE-1", "openssl")}), [], id="another-image-carries-it"),
])
def test_retire_fixes_what_no_counting_image_carries(
    tag_taken: bool, carried: frozenset[tuple[str, str]],
    expected: list[tuple[str, ...]],
) -> None:
    gone = [Departure("sha256:old", frozenset({("CVE-1", "openssl")}), tag_taken)]
    outcome = retire(REPO, gone, dict([stored("CVE-1:openssl")]), carried, NO_RULES, NOW)
    assert events(outcome) == expected
    assert [e.digests for e in outcome.events] == [("sha256:old",)] * len(expected)


def test_retire_leaves_resolved_and_unknown_findings_alone() -> None:
    gone = [Departure("sha256:old", frozenset({("CVE-1", "openssl"), ("CVE-2", "x")}), False)]
    outcome = retire(REPO, gone, dict([stored("CVE-1:openssl", resolved=True)]), frozenset(),
                     NO_RULES, NOW)
    assert outcome == Outcome()


@pytest.mark.parametrize(("was", "rules", "expected_events", "expected_mark"), [
    pytest.param("", NO_RULES, [], None, id="nothing-changes-without-rules"),
    pytest.param("old rule", NO_RULES,
                 [("reopened", "ignore_expired", "CVE-1", "1.0", "", "")], "", id="rule-removed"),
    pytest.param("", IgnoreRules((IgnoreConfig("r", date(2026, 7, 1), package="openssl"),)),
                 [], "r (ignored until 2026-07-01)", id="rule-added-only-marks"),
    pytest.param("r (ignored until 2026-07-01)",
                 IgnoreRules((IgnoreConfig("r", date(2026, 7, 1), package="openssl"),)),
                 [], None, id="same-rule-nothing"),
    pytest.param("r (ignored until 2026-06-01)",
                 IgnoreRules((IgnoreConfig("r", date(2026, 6, 1), package="openssl"),)),
                 [], None, id="expiry-day-still-ignored"),
    pytest.param("r (ignored until 2026-05-31)",
                 IgnoreRules((IgnoreConfig("r", date(2026, 5, 31), package="openssl"),)),
                 [("reopened", "ignore_expired", "CVE-1", "1.0", "", "")], "",
                 id="expired-yesterday"),
])
def test_reconcile_ignores_announces_only_an_ignore_that_ended(
    was: str, rules: IgnoreRules, expected_events: list[tuple[str, ...]],
    expected_mark: str | None,
) -> None:
    outcome = reconcile_ignores(REPO, dict([stored("CVE-1:openssl", ignored=was)]), rules, NOW)
    assert events(outcome) == expected_events
    marks = [w for w in outcome.writes if isinstance(w, FindingWrite) and w.op is Write.MARK]
    assert [w.ignore_reason for w in marks] == ([] if expected_mark is None else [expected_mark])
