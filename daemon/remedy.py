"""Remediation actions: (package, installed version) → the one fix that resolves its CVEs (pure).

The unit scanwatch leads with, in alerts (``alerts/group.py``), in ``scanwatch report show --by
action`` and in ``findings --by action``: every vulnerability found in one version of one
package, and the single version to upgrade to that fixes all of those that have a fix. That is
the highest of the lowest fix each vulnerability lists above the installed version, compared in
the package's ecosystem (``daemon/versions.py``); where the versions cannot be ordered (two
schemes, a commit hash, a form no scheme settles) there is no single fix and every candidate is
listed instead, for a person to choose.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from daemon import versions
from daemon.model import NO_EXPLOIT_INFO, ExploitInfo, Severity

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Vuln:
    id: str
    severity: Severity
    fix_version: str = ""  # as the report gives it: "", "1.2.5" or "1.2.5, 2.0.1"
    cvss_v3: float | None = None  # the report's CVSS v3 score, None where unscored
    cvss_vector: str = ""


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """One vulnerability of one package version, with what the caller wants back (``member``)."""

    package: str
    installed_version: str
    vuln: Vuln
    ecosystem: str = ""  # the report's; "" where it named none
    member: T | None = None
    source: str = ""  # where it comes from (daemon/lineage/advice.py): base, own, unknown or ""
    base_image: str = ""
    rebuild_on: str = ""  # the newer base tag that lacks this vulnerability
    step: str = ""  # the own build step that added the package


@dataclass(frozen=True, slots=True)
class Remedy(Generic[T]):
    """Upgrade ``package`` from ``installed_version`` to ``fix_version``.

    ``fix_version`` is "" when no vulnerability has a fix, or when the fixes cannot be ordered:
    then ``candidate_fix_versions`` lists them all. ``ecosystem`` is the report's, else the one
    inferred from the package and its versions, else "".
    """

    package: str
    installed_version: str
    ecosystem: str
    fix_version: str
    candidate_fix_versions: tuple[str, ...]
    vulnerabilities: tuple[Vuln, ...]  # worst first, then by id
    members: tuple[T, ...] = ()
    # Lineage (the most common among its entries): source base/own/unknown, the base image, the
    # newer base to rebuild on (set when it lacks every vulnerability of the group that the base
    # carries) and the own build step that added the package.
    source: str = ""
    base_image: str = ""
    rebuild_on: str = ""
    step: str = ""

    @property
    def fixable(self) -> bool:
        return any(v.fix_version.strip() for v in self.vulnerabilities)

    @property
    def top_severity(self) -> Severity:
        return max((v.severity for v in self.vulnerabilities), default=Severity.UNKNOWN)


def fix_for(package: str, installed: str, vulns: Sequence[Vuln],
            ecosystem: str = "") -> tuple[str, tuple[str, ...]]:
    """(the fix resolving every fixable one of ``vulns``, ()) or ("", every candidate).

    ("", ()) when none has a fix.
    """
    fixes = [v.fix_version for v in vulns if v.fix_version.strip()]
    if not fixes:
        return "", ()
    every = tuple(sorted({c for f in fixes for c in versions.candidates(f)}))
    scheme = versions.resolve(ecosystem, package, [installed, *every])
    if scheme is None:
        return "", every
    picks: list[str] = []
    for fix in fixes:
        pick = versions.lowest_fix(installed, fix, ecosystem=scheme)
        if pick is None:
            return "", every
        picks.append(pick)
    best = versions.highest(picks, ecosystem=scheme)
    return (best, ()) if best is not None else ("", every)


def _ecosystem(package: str, installed: str, named: set[str], vulns: Sequence[Vuln]) -> str:
    """The group's ecosystem: the one the report named, else inferred; "" if unknown or mixed."""
    if len(named) > 1:
        return ""
    fixes = [c for v in vulns for c in versions.candidates(v.fix_version)]
    return versions.resolve(next(iter(named), ""), package, [installed, *fixes]) or ""


def _common(values: Iterable[str]) -> str:
    counts = Counter(v for v in values if v)
    return min(counts, key=lambda v: (-counts[v], v)) if counts else ""


def _lineage(members: Sequence[Entry[T]]) -> tuple[str, str, str, str]:
    """(source, base image, rebuild on, step) of a group: the most common of each; rebuild on
    only where every base-sourced entry names the same newer base."""
    source = _common(e.source for e in members)
    base = _common(e.base_image for e in members if e.source == source)
    based = [e.rebuild_on for e in members if e.source == "base"]
    rebuild = based[0] if based and all(r == based[0] for r in based) else ""
    step = _common(e.step for e in members if e.source == source)
    return source, base, rebuild, step


def sort_key(r: Remedy[T]) -> tuple[bool, int, int, str, str]:
    """Fixable first, then the worst, the most vulnerabilities, by package and version."""
    return (not r.fixable, -r.top_severity, -len(r.vulnerabilities), r.package,
            r.installed_version)


@dataclass(frozen=True, slots=True)
class Exploit:
    """What KEV and EPSS say of a remedy's vulnerabilities together."""

    kev: bool = False
    date_added: Any = None  # of the KEV entry due first
    due_date: Any = None  # the earliest KEV due date among them
    epss: float | None = None  # the highest
    epss_percentile: float | None = None


def exploit_of(r: Remedy[Any], exploit: Mapping[str, ExploitInfo]) -> Exploit:
    infos = [exploit.get(v.id, NO_EXPLOIT_INFO) for v in r.vulnerabilities]
    listed = sorted((e for e in infos if e.kev), key=lambda e: (e.due_date is None, e.due_date))
    first = listed[0] if listed else None
    return Exploit(bool(listed), first.date_added if first else None,
                   first.due_date if first else None,
                   max((e.epss for e in infos if e.epss is not None), default=None),
                   max((e.epss_percentile for e in infos if e.epss_percentile is not None),
                       default=None))


def by_exploit(remedies: Iterable[Remedy[T]], exploit: Mapping[str, ExploitInfo],
               reach: Callable[[Remedy[T]], int] = lambda r: 0) -> list[Remedy[T]]:
    """``remedies`` in priority order (README): known exploited (CISA KEV) first, then fixable
    ones before those without a fix, the highest EPSS score, the worst severity, the widest
    reach (images), the most vulnerabilities, by package and version. With no feed data this
    is ``sort_key``'s order (reach aside)."""
    def key(r: Remedy[T]) -> tuple[bool, bool, float, int, int, int, str, str]:
        e = exploit_of(r, exploit)
        return (not e.kev, not r.fixable, -(e.epss or 0.0), -r.top_severity, -reach(r),
                -len(r.vulnerabilities), r.package, r.installed_version)
    return sorted(remedies, key=key)


def plan(entries: Iterable[Entry[T]]) -> list[Remedy[T]]:
    """One remedy per (package, installed version) of ``entries``, in ``sort_key`` order.

    A vulnerability listed twice for one package version counts once (the last entry wins).
    Versions named under two ecosystems are never compared: such a group lists candidates.
    """
    groups: dict[tuple[str, str], list[Entry[T]]] = {}
    for entry in entries:
        groups.setdefault((entry.package, entry.installed_version), []).append(entry)
    out: list[Remedy[T]] = []
    for (package, installed), members in groups.items():
        by_id = {e.vuln.id: e.vuln for e in members}
        vulns = tuple(sorted(by_id.values(), key=lambda v: (-v.severity, v.id)))
        named = {e.ecosystem for e in members if e.ecosystem}
        ecosystem = _ecosystem(package, installed, named, vulns)
        if len(named) > 1:
            fix, candidates = "", tuple(sorted({c for v in vulns
                                                for c in versions.candidates(v.fix_version)}))
        else:
            fix, candidates = fix_for(package, installed, vulns, ecosystem)
        out.append(Remedy(package, installed, ecosystem, fix, candidates, vulns,
                          tuple(e.member for e in members if e.member is not None),
                          *_lineage(members)))
    return sorted(out, key=sort_key)


@dataclass(slots=True)
class Members:
    """The open findings one vulnerability of a plan entry covers: how many, and the rows
    shown for them (every one from ``plan_findings``; the worst one from ``plan_counted``)."""

    findings: int
    rows: list[Any]
    repositories: set[Any]  # where they are (an action's reach: how many repositories)


def _entry(f: Any, version: str, vuln: Vuln, members: Members,
           lineage: Callable[[str], Any] | None) -> Entry[Members]:
    """The plan entry of finding row ``f`` (its worst of the triple) at installed ``version``,
    with where the package comes from when ``lineage`` is known."""
    src = lineage(f.key.registry).source(f.digests, f.key.vulnerability, f.key.package,
                                         version, f.ecosystem) if lineage is not None else None
    return Entry(f.key.package, version, vuln, f.ecosystem, members,
                 source=src.kind if src else "", base_image=src.base_image if src else "",
                 rebuild_on=src.rebuild_on if src else "", step=src.step if src else "")


def plan_findings(batches: Iterable[Iterable[Any]],
                  lineage: Callable[[str], Any] | None = None) -> list[Remedy[Members]]:
    """The plan of open findings (``store.findings.FindingRow`` batches): one entry per
    (package, installed version, vulnerability), so the same advisory in a thousand
    repositories is one line; its members are the rows that carry it (worst kept first).
    ``findings --by action``, the web's "fix first" and alerts group alike. With ``lineage``
    (registry -> its ``lineage.advice.Advisor``), each entry says where the package comes
    from (base image or own layers) and the base to rebuild on."""
    entries: dict[tuple[str, str, str], Entry[Members]] = {}
    for batch in batches:
        for f in batch:
            for version in f.installed_versions:
                triple = (f.key.package, version, f.key.vulnerability)
                known = entries.get(triple)
                members = known.member if known is not None and known.member is not None \
                    else Members(0, [], set())
                members.rows.append(f)
                members.findings += 1
                members.repositories.add((f.key.registry, f.key.project, f.key.repository))
                if known is None or (f.severity, f.fix_version) > (known.vuln.severity,
                                                                    known.vuln.fix_version):
                    entries[triple] = _entry(f, version, Vuln(
                        f.key.vulnerability, f.severity, f.fix_version, f.cvss_v3,
                        f.cvss_vector), members, lineage)
    return plan(entries.values())


def plan_counted(groups: Iterable[tuple[Any, str, Vuln, int, set[Any]]],
                 lineage: Callable[[str], Any] | None = None) -> list[Remedy[Members]]:
    """``plan_findings`` from findings counted in the database (``store/actions.py``): per
    (package, installed version, vulnerability), its worst finding row, the version, the
    vulnerability at its worst, how many findings it covers and the repositories they are
    in. The same plan, without reading every finding."""
    return plan(_entry(f, version, vuln, Members(n, [f], where), lineage)
                for f, version, vuln, n, where in groups)
