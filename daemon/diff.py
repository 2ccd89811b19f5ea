"""Every rule that names a change kind or reason (DESIGN.md "What 'changed' means"). Pure.

- ``diff_reports``: what changed between two reports (also ``scanwatch report diff``).
- ``diff_scan`` + ``apply_scan``: what one successful scan does to its repository's findings,
  given the stored state the store loaded; ``retire``: images that left; ``reconcile_ignores``:
  ignore rules that changed. Each returns an ``Outcome`` (finding writes and change events) that
  ``daemon/store/`` applies in one transaction.
- ``mass_removal``: a walk that would remove too large a share of a registry at once is not
  believed (an empty listing behind a proxy or a permission change looks like that).

A finding is (vulnerability, package) per repository, so when a report is compared with another
digest's (a push), a package upgraded from 1.0 to 1.1 that still carries the CVE is neither fixed
nor new: the two occurrences pair up and are compared as one. Only a scan that finished with a
complete, successful report may resolve anything (``can_resolve``); the store keeps only such
reports as baselines (a digest's last success, else its tags' previous digest's).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime

from daemon import versions
from daemon.ignores import IgnoreRules
from daemon.model import (
    Change,
    ChangeEvent,
    ChangeKind,
    FindingKey,
    Occurrence,
    Reason,
    ScanResult,
    ScanState,
    Severity,
)

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



# --- the history rules: what a scan, a removal or an ignore change does to findings -----------
#
# ``daemon/store/`` loads the state these functions are given (the repository's findings, the
# baseline and predecessors' contents, which keys other images still carry) and applies the
# ``Outcome`` they return in one transaction. Every change kind and reason is decided here.

FindingId = tuple[str, str]  # (vulnerability, package) inside one repository


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as history holds it before the change being decided."""

    id: int
    severity: Severity
    fix_version: str
    installed_versions: str
    resolved: bool
    ignored: bool = False
    ignore_reason: str = ""


class Write(enum.Enum):
    INSERT = "insert"  # a finding first seen: open
    UPDATE = "update"  # still open, with a new severity, fix or versions
    REOPEN = "reopen"  # resolved, carried again: open
    RESOLVE = "resolve"  # no counting image carries it any more
    MARK = "mark"  # only its ignored mark changes


@dataclass(frozen=True, slots=True)
class FindingWrite:
    op: Write
    key: FindingId
    severity: Severity = Severity.NONE
    fix_version: str = ""
    installed_versions: str = ""
    ignore_reason: str = ""  # INSERT, REOPEN and MARK: why it is ignored ("" for not)
    resolved_reason: Reason | None = None  # RESOLVE


@dataclass(frozen=True, slots=True)
class EventDraft:
    """A change event of one finding of the repository (``key`` ("", "") for a summary)."""

    kind: ChangeKind
    reason: Reason
    key: FindingId
    severity: Severity
    installed: str = ""
    fix: str = ""
    previous_severity: Severity | None = None
    previous_version: str = ""
    digests: tuple[str, ...] = ()
    count: int = 1
    ignored: bool = False
    cvss_v3: float | None = None  # the report's score (``cvss_of``), None where unscored
    cvss_vector: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    writes: tuple[FindingWrite, ...] = ()
    events: tuple[EventDraft, ...] = ()


def is_first_sight(item: object) -> bool:
    """A first-sight summary event: kind new, reason first_sight, no vulnerability; it stands
    for a repository's first findings (``count``), which alerts summarise, never list."""
    return (isinstance(item, ChangeEvent) and item.reason is Reason.FIRST_SIGHT
            and not item.finding.vulnerability)


@dataclass(frozen=True, slots=True)
class Repository:
    registry: str
    project: str
    repository: str

    def finding(self, key: FindingId) -> FindingKey:
        return FindingKey(self.registry, self.project, self.repository, *key)


def summarise(occs: Sequence[Occurrence]) -> tuple[Severity, str, str]:
    """A finding's severity, fix and installed versions over the occurrences that carry it.

    Where the repository carries the package at several versions, the fix is the one that
    covers them all (the highest of their fixes), or the fixes listed where they cannot be
    ordered: the first one found would leave the other versions vulnerable.
    """
    if len(occs) == 1:
        o = occs[0]
        return o.severity, o.fix_version, o.version
    severity = max(o.severity for o in occs)
    fixes = sorted({o.fix_version for o in occs if o.fix_version})
    best = versions.highest(fixes, ecosystem=_ecosystem(occs), package=occs[0].package)
    fix = (best or ", ".join(fixes)) if fixes else ""
    installed = ", ".join(sorted({o.version for o in occs}))
    return severity, fix, installed


def cvss_of(occs: Iterable[Occurrence]) -> tuple[float | None, str]:
    """The highest CVSS v3 score of these occurrences and its vector ((None, "") unscored)."""
    scored = [(o.cvss_v3, o.cvss_vector) for o in occs if o.cvss_v3 is not None]
    if not scored:
        return None, ""
    score, vector = max(scored, key=lambda sv: (sv[0], bool(sv[1])))
    return score, vector


def _ecosystem(occs: Sequence[Occurrence]) -> str:
    """The ecosystem the report names for these occurrences ("" when it names none)."""
    return next((o.ecosystem for o in occs if o.ecosystem), "")


def _by_version(occs: Sequence[Occurrence]) -> list[tuple[Severity, str, str]]:
    """(severity, fix, installed version) for each installed version: one event each, so an
    alert's action (package, installed version) gets the fix of that version."""
    groups: dict[str, list[Occurrence]] = {}
    for o in occs:
        groups.setdefault(o.version, []).append(o)
    return [summarise(group) for _, group in sorted(groups.items())]


def by_finding(occurrences: Iterable[Occurrence]) -> dict[FindingId, list[Occurrence]]:
    out: dict[FindingId, list[Occurrence]] = {}
    for occ in occurrences:
        found = out.get((occ.id, occ.package))
        if found is None:
            out[(occ.id, occ.package)] = [occ]
        else:
            found.append(occ)
    return out


@dataclass(frozen=True, slots=True)
class ScanDiff:
    """What a successful scan changes before history is consulted (``diff_scan``)."""

    occurrences: Sequence[Occurrence]
    current: frozenset[FindingId]  # the findings the report carries
    changes: dict[FindingId, list[Change]]  # fix_available / severity_changed per finding
    gone: dict[FindingId, Reason]  # no longer carried by this image (or the one it replaced)

    def todo(self, open_keys: Set[FindingId]) -> set[FindingId]:
        """The findings that need their stored state: not open yet, or with a change."""
        return set(self.current - open_keys) | self.changes.keys()


def diff_scan(
    current: Sequence[Occurrence],
    baseline: Sequence[Occurrence] | None,
    *,
    same_digest: bool,
    superseded: Iterable[frozenset[FindingId]] = (),
) -> ScanDiff:
    """The scan's report against its baseline (DESIGN.md "What 'changed' means").

    ``baseline`` is the digest's own previous report (``same_digest``) or the report of the
    digest its tags pointed to before; None on first sight of the digest. ``superseded`` are
    the findings of the images this one replaces (they stop counting now): what they carried
    and this one does not is gone by rebuild; what a rescan no longer lists is withdrawn.
    """
    found = frozenset((o.id, o.package) for o in current)
    changes: dict[FindingId, list[Change]] = {}
    gone: dict[FindingId, Reason] = {}
    if baseline is not None:
        for change in diff_reports(baseline, current, same_digest=same_digest):
            if change.kind in (ChangeKind.FIX_AVAILABLE, ChangeKind.SEVERITY_CHANGED):
                occ = change.occurrence
                changes.setdefault((occ.id, occ.package), []).append(change)
        if same_digest:
            for key in {(o.id, o.package) for o in baseline} - found:
                gone[key] = Reason.ADVISORY_WITHDRAWN
    for keys in superseded:
        for key in keys - found:
            gone.setdefault(key, Reason.FIXED_BY_REBUILD)
    return ScanDiff(current, found, changes, gone)


@dataclass(frozen=True, slots=True)
class ScanFacts:
    """The scan being applied, as the history rules need it."""

    repository: Repository
    digest: str
    same_digest: bool
    first_sight: bool  # no baseline, and the image was there when the repository was first seen
    superseded_digests: tuple[str, ...] = ()


def apply_scan(
    scan: ScanFacts,
    diff: ScanDiff,
    findings: Mapping[FindingId, StoredFinding],
    open_keys: Set[FindingId],
    carried: Set[FindingId],
    rules: IgnoreRules,
    now: datetime,
) -> Outcome:
    """The writes and change events of one successful scan of a counting image.

    ``findings`` holds (at least) the stored findings of ``diff.todo(open_keys)`` and of
    ``diff.gone``; ``carried`` are the gone findings another counting image still carries.
    - A finding not in history is inserted: NEW (``advisory_published`` on a rescan, else
      ``new_image``), one event per installed version; on first sight it is counted into one
      summary event (reason ``first_sight``) instead.
    - A resolved finding carried again is REOPENED.
    - An open one with a fix where it had none (FIX_AVAILABLE, per installed version whose fix
      differs from the one known) or another severity (SEVERITY_CHANGED) is updated.
    - A gone finding no other image carries is FIXED with the reason ``diff_scan`` gave.
    """
    repo = scan.repository
    digests = (scan.digest,)
    writes: list[FindingWrite] = []
    events: list[EventDraft] = []
    first_count, first_severity = 0, Severity.NONE
    todo = diff.todo(open_keys)
    grouped = by_finding(o for o in diff.occurrences if (o.id, o.package) in todo)
    for key in sorted(grouped):
        occs = grouped[key]
        row = findings.get(key)
        severity, fix, installed = summarise(occs)
        why = rules.reason(repo.finding(key), now) if rules else ""
        score, vector = cvss_of(occs)
        if row is None:
            writes.append(FindingWrite(Write.INSERT, key, severity, fix, installed, why))
            if scan.first_sight:
                first_count += 1
                first_severity = max(first_severity, severity)
                continue
            reason = Reason.ADVISORY_PUBLISHED if scan.same_digest else Reason.NEW_IMAGE
            events.extend(EventDraft(ChangeKind.NEW, reason, key, sev, ver, fixed,
                                     digests=digests, ignored=bool(why), cvss_v3=score,
                                     cvss_vector=vector)
                          for sev, fixed, ver in _by_version(occs))
        elif row.resolved:
            writes.append(FindingWrite(Write.REOPEN, key, severity, fix, installed, why))
            events.extend(EventDraft(ChangeKind.REOPENED, Reason.REOPENED, key, sev, ver, fixed,
                                     row.severity, digests=digests, ignored=bool(why),
                                     cvss_v3=score, cvss_vector=vector)
                          for sev, fixed, ver in _by_version(occs))
        else:
            found = _changed(key, row, diff.changes.get(key, ()), installed, fix, digests, why)
            if found:
                if row.fix_version and fix and row.fix_version != fix:
                    # Other images of the repository may carry another version: keep a fix
                    # that covers them too (findings recomputes it from the images anyway).
                    fix = versions.highest([row.fix_version, fix], ecosystem=_ecosystem(occs),
                                           package=key[1]) or fix
                writes.append(FindingWrite(Write.UPDATE, key, severity, fix, installed))
                events.extend(found)
    for key, reason in sorted(diff.gone.items()):
        row = findings.get(key)
        if key in carried or row is None or row.resolved:
            continue
        writes.append(_resolve(key, row, reason))
        events.append(_fixed(key, row, reason, scan.superseded_digests or digests, rules,
                             repo, now))
    if first_count:
        events.append(EventDraft(ChangeKind.NEW, Reason.FIRST_SIGHT, ("", ""), first_severity,
                                 digests=digests, count=first_count))
    return Outcome(tuple(writes), tuple(events))


def arrived_known_exploited(events: Sequence[EventDraft], kev: Set[str], detail: str
                            ) -> list[EventDraft]:
    """The ``known_exploited``/``in_kev`` events of a scan's outcome: one per finding that it
    opens (``new``, not a first-sight summary, or ``reopened``) while its CVE is listed in
    CISA KEV (``kev``, the copy in force), beside that event, so alerts say it is known
    exploited (once: the ``new`` and the ``in_kev`` of a finding make one line). ``detail``
    (the KEV version) is kept in ``previous_version`` as the feed's own events keep it."""
    out: list[EventDraft] = []
    seen: set[FindingId] = set()
    for e in events:
        if (e.kind not in (ChangeKind.NEW, ChangeKind.REOPENED) or e.reason is Reason.FIRST_SIGHT
                or e.key in seen or e.key[0] not in kev):
            continue
        seen.add(e.key)
        out.append(EventDraft(ChangeKind.KNOWN_EXPLOITED, Reason.IN_KEV, e.key, e.severity,
                              e.installed, e.fix, previous_version=detail, digests=e.digests,
                              ignored=e.ignored))
    return out


def _changed(key: FindingId, row: StoredFinding, changes: Iterable[Change], installed: str,
             fix: str, digests: tuple[str, ...], why: str) -> list[EventDraft]:
    out: list[EventDraft] = []
    for change in changes:
        occ, prev = change.occurrence, change.previous
        if change.kind is ChangeKind.FIX_AVAILABLE and (
                not row.fix_version or occ.fix_version != row.fix_version):
            # Per installed version: another version's fix may have been announced already.
            out.append(EventDraft(change.kind, change.reason, key, occ.severity, occ.version,
                                  occ.fix_version, digests=digests, ignored=bool(why),
                                  cvss_v3=occ.cvss_v3, cvss_vector=occ.cvss_vector))
        elif change.kind is ChangeKind.SEVERITY_CHANGED and row.severity != occ.severity:
            out.append(EventDraft(change.kind, change.reason, key, occ.severity, installed,
                                  fix, row.severity, prev.version if prev else "", digests,
                                  ignored=bool(why), cvss_v3=occ.cvss_v3,
                                  cvss_vector=occ.cvss_vector))
    return out


def _resolve(key: FindingId, row: StoredFinding, reason: Reason) -> FindingWrite:
    return FindingWrite(Write.RESOLVE, key, row.severity, row.fix_version,
                        row.installed_versions, resolved_reason=reason)


def _fixed(key: FindingId, row: StoredFinding, reason: Reason, digests: tuple[str, ...],
           rules: IgnoreRules, repo: Repository, now: datetime) -> EventDraft:
    ignored = rules.ignored(repo.finding(key), now) if rules else False
    return EventDraft(ChangeKind.FIXED, reason, key, row.severity, row.installed_versions,
                      row.fix_version, digests=digests, ignored=ignored)


@dataclass(frozen=True, slots=True)
class Departure:
    """An image that stops counting without a scan: gone from the registry, or untagged."""

    digest: str
    keys: frozenset[FindingId]  # the findings its last report carried
    tag_taken: bool  # its tags now point at another image (already scanned)


def mass_removal(known: int, removed: int, max_share: float) -> str:
    """One line when ``removed`` of the ``known`` artifacts is more than ``max_share`` of them
    (then the walk records nothing), else ""."""
    if known == 0 or removed <= known * max_share:
        return ""
    return (f"the walk would remove {removed} of {known} artifacts "
            f"({100 * removed / known:.0f} %, more than max_removed_share = {max_share:g}): "
            "nothing of it recorded; if they are really gone, raise max_removed_share for a run")


def retire(
    repo: Repository,
    departed: Sequence[Departure],
    findings: Mapping[FindingId, StoredFinding],
    carried: Set[FindingId],
    rules: IgnoreRules,
    now: datetime,
) -> Outcome:
    """Findings the departed images carried and no other counting image does are FIXED:
    ``fixed_by_rebuild`` where the image's tags moved on to a rebuild, else ``image_removed``."""
    reasons: dict[FindingId, tuple[Reason, list[str]]] = {}
    for image in departed:
        reason = Reason.FIXED_BY_REBUILD if image.tag_taken else Reason.IMAGE_REMOVED
        for key in image.keys - carried:
            entry = reasons.setdefault(key, (reason, []))
            if image.digest not in entry[1]:
                entry[1].append(image.digest)
    writes: list[FindingWrite] = []
    events: list[EventDraft] = []
    for key, (reason, digests) in sorted(reasons.items()):
        row = findings.get(key)
        if row is None or row.resolved:
            continue
        writes.append(_resolve(key, row, reason))
        events.append(_fixed(key, row, reason, tuple(digests), rules, repo, now))
    return Outcome(tuple(writes), tuple(events))


def reconcile_ignores(
    repo: Repository,
    open_findings: Mapping[FindingId, StoredFinding],
    rules: IgnoreRules,
    now: datetime,
) -> Outcome:
    """Bring the ignored marks of a repository's open findings in line with ``rules`` at ``now``.

    A finding that stops being ignored (its rule expired or was removed, its allowlist entry
    left) is announced once: REOPENED with reason ``ignore_expired``. One that becomes ignored
    changes its mark only. Nothing else moves: with the same rules, nothing at all.
    """
    writes: list[FindingWrite] = []
    events: list[EventDraft] = []
    for key, row in sorted(open_findings.items()):
        why = rules.reason(repo.finding(key), now) if rules else ""
        if bool(why) == row.ignored and why == row.ignore_reason:
            continue
        writes.append(FindingWrite(Write.MARK, key, row.severity, row.fix_version,
                                   row.installed_versions, why))
        if row.ignored and not why:
            events.append(EventDraft(ChangeKind.REOPENED, Reason.IGNORE_EXPIRED, key,
                                     row.severity, row.installed_versions, row.fix_version))
    return Outcome(tuple(writes), tuple(events))
