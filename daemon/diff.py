"""What changed between a report and its baseline, and which report is the baseline. Pure.

DESIGN.md "What 'changed' means". A finding is (vulnerability, package) per repository, so when a
report is compared with another digest's (a push), a package upgraded from 1.0 to 1.1 that still
carries the CVE is neither fixed nor new: the two occurrences pair up and are compared as one.
Only a scan that finished with a complete, successful report may resolve anything
(``can_resolve``), and only such a scan may be a baseline (``choose_baseline``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from daemon.model import Change, ChangeKind, Occurrence, Reason, ScanResult, ScanState

_KIND_ORDER = {kind: n for n, kind in enumerate(ChangeKind)}

Key = tuple[str, str, str]


def can_resolve(result: ScanResult) -> bool:
    """Whether this scan outcome may open or close anything: only Success with a whole report.

    Error, Stopped, still-running (``{}``), unparsable or partly fetched outcomes carry no report
    (collect leaves ``report`` None), so they resolve nothing and are never a baseline.
    """
    return result.state is ScanState.SUCCESS and result.report is not None


def _index(occurrences: Iterable[Occurrence]) -> dict[Key, Occurrence]:
    out: dict[Key, Occurrence] = {}
    for occ in occurrences:
        out.setdefault(occ.key, occ)  # reports are normalised: keys are unique already
    return out


def _compare(before: Occurrence, after: Occurrence) -> list[Change]:
    """Changes of one finding seen in both reports (same version or a carried-over one)."""
    changes: list[Change] = []
    if not before.fix_version and after.fix_version:
        changes.append(Change(ChangeKind.FIX_AVAILABLE, Reason.FIX_RELEASED, after, before))
    if before.severity != after.severity:
        direction = "up" if after.severity > before.severity else "down"
        changes.append(
            Change(ChangeKind.SEVERITY_CHANGED, Reason.RESCORED, after, before, direction)
        )
    return changes


def diff_reports(
    baseline: Sequence[Occurrence] | None,
    current: Sequence[Occurrence],
    *,
    same_digest: bool,
    exact_keys: bool = False,
) -> list[Change]:
    """The changes from ``baseline`` to ``current`` (both normalised: unique, sorted keys).

    - ``baseline`` None (first sight of the repository): ``[]``; history records and summarises.
    - ``same_digest``: True for a rescan of the same digest (reasons ``advisory_published`` /
      ``advisory_withdrawn``), False when the baseline is another digest the tag pointed to
      (``new_image`` / ``fixed_by_rebuild``).
    - NEW / FIXED are decided per finding, ``(id, package)``: an id+package present on both sides
      at different versions is neither. Its occurrences pair up by exact key first, then the
      remaining ones in version order, and each pair may yield FIX_AVAILABLE (``fix_version``
      "" → set) and/or SEVERITY_CHANGED (direction "up"/"down"), with ``previous`` carrying the
      installed version before and ``occurrence`` the one now. A version move alone is no Change.
    - ``exact_keys=True`` decides on ``(id, package, version)`` instead (``scanwatch report diff``
      on two files): a version move is then FIXED for the old key and NEW for the new one.

    Output order: kind (new, fixed, fix_available, severity_changed), then occurrence key.
    """
    if baseline is None:
        return []
    new_reason = Reason.ADVISORY_PUBLISHED if same_digest else Reason.NEW_IMAGE
    fixed_reason = Reason.ADVISORY_WITHDRAWN if same_digest else Reason.FIXED_BY_REBUILD
    before = _index(baseline)
    after = _index(current)

    def group(index: dict[Key, Occurrence]) -> dict[tuple[str, ...], list[Occurrence]]:
        groups: dict[tuple[str, ...], list[Occurrence]] = defaultdict(list)
        for key in sorted(index):
            groups[key if exact_keys else key[:2]].append(index[key])
        return groups

    old_groups, new_groups = group(before), group(after)
    changes: list[Change] = []
    for finding in sorted(set(old_groups) | set(new_groups)):
        olds, news = old_groups.get(finding, []), new_groups.get(finding, [])
        if not olds:
            changes.extend(Change(ChangeKind.NEW, new_reason, occ) for occ in news)
            continue
        if not news:
            changes.extend(Change(ChangeKind.FIXED, fixed_reason, occ, occ) for occ in olds)
            continue
        for old, new in _pair(olds, news):
            changes.extend(_compare(old, new))
    changes.sort(key=lambda c: (_KIND_ORDER[c.kind], c.occurrence.key))
    return changes


def new_in_repository(
    open_findings: Collection[tuple[str, str]], current: Sequence[Occurrence]
) -> list[Change]:
    """NEW (``new_image``) changes for a digest with no baseline in an already-known repository.

    ``choose_baseline`` returns None for a digest pushed under a tag the repository never had;
    that is first sight of the digest, not of the repository. Findings are per repository, so
    only ``(id, package)`` pairs not already open in it (``open_findings``) are new. Nothing is
    FIXED this way: other artifacts of the repository may still carry what this one lacks.
    """
    changes = [
        Change(ChangeKind.NEW, Reason.NEW_IMAGE, occ)
        for occ in _index(current).values()
        if (occ.id, occ.package) not in open_findings
    ]
    changes.sort(key=lambda c: c.occurrence.key)
    return changes


def _pair(olds: list[Occurrence], news: list[Occurrence]) -> list[tuple[Occurrence, Occurrence]]:
    """Pair one finding's occurrences: same version first, then the rest in version order."""
    new_by_version = {o.version: o for o in news}
    pairs = [(o, new_by_version[o.version]) for o in olds if o.version in new_by_version]
    matched = {o.version for o, _ in pairs}
    rest_old = [o for o in olds if o.version not in matched]
    rest_new = [o for o in news if o.version not in matched]
    pairs.extend(zip(rest_old, rest_new, strict=False))  # extras: still the same open finding
    return pairs


def unchanged_count(
    baseline: Sequence[Occurrence], current: Sequence[Occurrence], changes: Sequence[Change]
) -> int:
    """Occurrences with the same exact key on both sides and no change of their own."""
    shared = set(_index(baseline)) & set(_index(current))
    touched = {c.occurrence.key for c in changes if c.previous is not None}
    return len(shared - touched)


# --- baseline ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BaselineCandidate:
    """One earlier scan that history knows of, as ``choose_baseline`` needs it.

    ``complete`` is True only when the whole report was fetched and parsed (not ``{}``, not a
    truncated body); ``tags`` are the tags the digest carried when that scan was recorded;
    ``scan_id`` is the caller's handle (a report id or a row id), returned untouched.
    """

    digest: str
    state: ScanState
    finished_at: datetime | None
    complete: bool = True
    tags: tuple[str, ...] = ()
    scan_id: str = ""

    @property
    def usable(self) -> bool:
        """Only a successful scan with a complete report can be a baseline."""
        return self.state is ScanState.SUCCESS and self.complete


@dataclass(frozen=True, slots=True)
class Baseline:
    """The chosen baseline and whether it is the same digest (a rescan) or another (a push)."""

    candidate: BaselineCandidate
    same_digest: bool


def _latest(candidates: Iterable[BaselineCandidate]) -> BaselineCandidate | None:
    def order(c: BaselineCandidate) -> tuple[bool, datetime | None, str]:
        return (c.finished_at is not None, c.finished_at, c.scan_id)

    pool = list(candidates)
    return max(pool, key=order) if pool else None


def choose_baseline(
    digest: str,
    tags: Iterable[str],
    candidates: Iterable[BaselineCandidate],
    *,
    before: datetime | None = None,
    exclude_scan_id: str = "",
) -> Baseline | None:
    """The baseline for a new successful scan of ``digest`` (currently tagged ``tags``).

    1. the latest usable scan of the same digest (a rescan: ``same_digest=True``), else
    2. the latest usable scan of another digest that carried one of ``tags`` (a push: the tag
       moved; if the tag's previous digest never scanned successfully, the one before it), else
    3. None: first sight.

    Usable = Success with a complete report (Error, Stopped, ``{}`` and partial reports never
    are). Candidates finished at or after ``before`` (the new scan's own finish time), undated
    ones when ``before`` is given, and ``exclude_scan_id`` (the new scan itself) are ignored.
    Ties break on the later ``scan_id``.
    """
    wanted = set(tags)
    pool = [
        c
        for c in candidates
        if c.usable
        and (not exclude_scan_id or c.scan_id != exclude_scan_id)
        and (before is None or (c.finished_at is not None and c.finished_at < before))
    ]
    same = _latest(c for c in pool if c.digest == digest)
    if same is not None:
        return Baseline(same, same_digest=True)
    moved = _latest(c for c in pool if c.digest != digest and wanted & set(c.tags))
    if moved is not None:
        return Baseline(moved, same_digest=False)
    return None


def diff_result(
    result: ScanResult, baseline: Sequence[Occurrence] | None, *, same_digest: bool
) -> list[Change]:
    """``diff_reports`` guarded by ``can_resolve``: a failed or empty scan changes nothing."""
    if not can_resolve(result) or result.report is None:
        return []
    return diff_reports(baseline, result.report.occurrences, same_digest=same_digest)
