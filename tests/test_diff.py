"""What changed, and against which baseline (DESIGN.md "What 'changed' means")."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from daemon.diff import can_resolve, diff_reports, unchanged_count
from daemon.model import (
    ArtifactRef,
    Change,
    ChangeKind,
    Occurrence,
    Report,
    ScanResult,
    ScanState,
    Severity,
)

H, C, M, L = Severity.HIGH, Severity.CRITICAL, Severity.MEDIUM, Severity.LOW
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def occ(
    vid: str = "CVE-1", pkg: str = "openssl", ver: str = "3.0.13", fix: str = "", sev: Severity = H
) -> Occurrence:
    return Occurrence(id=vid, package=pkg, version=ver, fix_version=fix, severity=sev)


def summary(changes: list[Change]) -> list[tuple[str, str, str, str, str]]:
    return [
        (c.kind.value, c.reason.value, c.occurrence.id, c.occurrence.version, c.direction)
        for c in changes
    ]


@pytest.mark.parametrize(
    ("baseline", "current", "same_digest", "expected"),
    [
        ([], [occ()], True, [("new", "advisory_published", "CVE-1", "3.0.13", "")]),
        ([], [occ()], False, [("new", "new_image", "CVE-1", "3.0.13", "")]),
        ([occ()], [], True, [("fixed", "advisory_withdrawn", "CVE-1", "3.0.13", "")]),
        ([occ()], [], False, [("fixed", "fixed_by_rebuild", "CVE-1", "3.0.13", "")]),
        ([occ()], [occ(fix="3.0.15")], True,
         [("fix_available", "fix_released", "CVE-1", "3.0.13", "")]),
        ([occ(sev=M)], [occ(sev=C)], True,
         [("severity_changed", "rescored", "CVE-1", "3.0.13", "up")]),
        ([occ(sev=C)], [occ(sev=L)], True,
         [("severity_changed", "rescored", "CVE-1", "3.0.13", "down")]),
        ([occ(sev=M)], [occ(sev=H, fix="3.0.15")], True,
         [("fix_available", "fix_released", "CVE-1", "3.0.13", ""),
          ("severity_changed", "rescored", "CVE-1", "3.0.13", "up")]),
        ([occ(fix="3.0.15")], [occ(fix="")], True, []),
        ([occ(fix="3.0.14")], [occ(fix="3.0.15")], True, []),
        ([occ()], [occ()], True, []),
        ([occ(ver="3.0.13")], [occ(ver="3.0.14")], False, []),
        ([occ(ver="3.0.13")], [occ(ver="3.0.14", fix="3.0.15")], False,
         [("fix_available", "fix_released", "CVE-1", "3.0.14", "")]),
        ([occ(ver="3.0.13", sev=H)], [occ(ver="3.0.14", sev=C)], False,
         [("severity_changed", "rescored", "CVE-1", "3.0.14", "up")]),
        ([occ(ver="1.0"), occ(ver="2.0")], [occ(ver="2.0")], False, []),
        ([occ(ver="2.0")], [occ(ver="1.0"), occ(ver="2.0")], False, []),
        ([occ(pkg="openssl")], [occ(pkg="libssl")], False,
         [("new", "new_image", "CVE-1", "3.0.13", ""),
          ("fixed", "fixed_by_rebuild", "CVE-1", "3.0.13", "")]),
    ],
    ids=[
        "new-advisory-published-on-rescan",
        "new-with-a-new-image",
        "fixed-advisory-withdrawn-on-rescan",
        "fixed-by-rebuild",
        "fix-released",
        "rescored-up",
        "rescored-down",
        "fix-and-rescore-on-one-key-are-two-changes",
        "fix-withdrawn-is-not-a-change",
        "fix-version-moved-is-not-a-change",
        "unchanged",
        "rebuild-at-another-version-is-neither-new-nor-fixed",
        "rebuild-at-another-version-with-a-fix-released",
        "rebuild-at-another-version-rescored",
        "one-of-two-versions-gone-is-not-fixed",
        "second-version-appearing-is-not-new",
        "same-cve-other-package-is-another-finding",
    ],
)
def test_it_classifies_each_change(
    baseline: list[Occurrence],
    current: list[Occurrence],
    same_digest: bool,
    expected: list[tuple[str, str, str, str, str]],
) -> None:
    assert summary(diff_reports(baseline, current, same_digest=same_digest)) == expected


def test_it_announces_nothing_on_first_sight() -> None:
    assert diff_reports(None, [occ(), occ("CVE-2")], same_digest=False) == []


def test_it_carries_the_installed_version_across_a_rebuild() -> None:
    (change,) = diff_reports(
        [occ(ver="3.0.13")], [occ(ver="3.0.14", fix="3.0.15")], same_digest=False
    )
    assert change.previous is not None
    assert (change.previous.version, change.occurrence.version) == ("3.0.13", "3.0.14")


def test_it_pairs_same_versions_before_others() -> None:
    baseline = [occ(ver="1.0", sev=L), occ(ver="2.0", sev=H)]
    current = [occ(ver="2.0", sev=C), occ(ver="3.0", sev=L)]
    (change,) = diff_reports(baseline, current, same_digest=False)
    assert change.kind is ChangeKind.SEVERITY_CHANGED
    assert change.previous is not None
    assert (change.occurrence.version, change.previous.version) == ("2.0", "2.0")


def test_it_sees_a_version_move_as_fixed_and_new_when_keys_must_match_exactly() -> None:
    changes = diff_reports([occ(ver="1.0")], [occ(ver="1.1")], same_digest=False, exact_keys=True)
    assert summary(changes) == [
        ("new", "new_image", "CVE-1", "1.1", ""),
        ("fixed", "fixed_by_rebuild", "CVE-1", "1.0", ""),
    ]


def test_a_rescan_that_adds_a_fix_version_yields_exactly_one_fix_available() -> None:
    baseline = [occ("CVE-1"), occ("CVE-2", fix="9"), occ("CVE-3", pkg="zlib")]
    current = [occ("CVE-1", fix="3.0.15"), occ("CVE-2", fix="9"), occ("CVE-3", pkg="zlib")]
    changes = diff_reports(baseline, current, same_digest=True)
    assert summary(changes) == [("fix_available", "fix_released", "CVE-1", "3.0.13", "")]


def test_its_output_order_does_not_depend_on_input_order() -> None:
    baseline = [occ(f"CVE-{n}", sev=L) for n in range(20)]
    current = [occ(f"CVE-{n}", sev=H, fix="x") for n in range(10, 30)]
    expected = diff_reports(baseline, current, same_digest=True)
    rng = random.Random(7)
    for _ in range(5):
        b, c = baseline[:], current[:]
        rng.shuffle(b)
        rng.shuffle(c)
        assert diff_reports(b, c, same_digest=True) == expected
    kinds = [c.kind for c in expected]
    assert kinds == sorted(kinds, key=list(ChangeKind).index)
    assert len(expected) == 10 + 10 + 10 + 10  # new, fixed, fix_available, severity_changed


def test_it_counts_unchanged_occurrences() -> None:
    baseline = [occ("CVE-1"), occ("CVE-2"), occ("CVE-3"), occ("CVE-4")]
    current = [occ("CVE-1"), occ("CVE-2", fix="1"), occ("CVE-3", sev=C), occ("CVE-5")]
    changes = diff_reports(baseline, current, same_digest=True, exact_keys=True)
    assert unchanged_count(baseline, current, changes) == 1


# --- can_resolve and the hard rules -----------------------------------------------------------

REF = ArtifactRef("prod", "payments", "api", "sha256:" + "1" * 64)


def result(state: ScanState, occurrences: list[Occurrence] | None) -> ScanResult:
    report = None
    if occurrences is not None:
        report = Report("Trivy", "v0.56", T0, tuple(occurrences))
    return ScanResult(ref=REF, state=state, report_id="r1", trigger="manual", report=report)


@pytest.mark.parametrize(
    ("state", "occurrences", "expected"),
    [
        (ScanState.SUCCESS, [occ()], True),
        (ScanState.SUCCESS, [], True),
        (ScanState.SUCCESS, None, False),
        (ScanState.ERROR, None, False),
        (ScanState.ERROR, [], False),
        (ScanState.STOPPED, None, False),
        (ScanState.RUNNING, None, False),
        (ScanState.PENDING, None, False),
    ],
    ids=["success", "success-clean", "success-without-report", "error", "error-with-empty-report",
         "stopped", "running", "pending"],
)
def test_only_a_successful_complete_report_may_resolve(
    state: ScanState, occurrences: list[Occurrence] | None, expected: bool
) -> None:
    assert can_resolve(result(state, occurrences)) is expected


