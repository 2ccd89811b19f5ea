"""The remediation plan's input read lean: what ``findings --by action`` and the web's "Fix
first" need of a registry's open findings, without building a row object for each.

``remedy.plan_findings`` reads every finding with its carriers as ``FindingRow`` objects (a
registry of 100,000 images holds hundreds of thousands) only to keep, per (package, installed
version, vulnerability), its worst severity and fix, how many findings it covers and the worst
row. Here the database gives plain tuples: each matching finding with the versions (and
lowest fix) its counting images carry, from its carrier summary (``carrier_summary``, read in
the same statement as its repository's mark), a marked repository's a batch of repositories at
a time through ``ix_content_finding_content``; they are counted in Python as ``plan_findings``
counts them.
Only the worst finding of each triple is then read whole, with its carriers (its ecosystem, its
images and, through lineage, where the package comes from): ``remedy.plan_counted``.

Ignores stay exact, as ``findings`` applies them at the time asked: a finding whose
(vulnerability, package) no rule could match is counted without asking
(``IgnoreRules.may_match``); the others are asked of the rules one by one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from daemon.ignores import IgnoreRules
from daemon.model import FindingKey, Severity
from daemon.remedy import Vuln
from daemon.store import carrier_summary as cs
from daemon.store import carriers, findings
from daemon.store import tables as t
from daemon.store.base import driver_rows
from daemon.store.carriers import content_finding
from daemon.store.findings import FindingQuery, FindingRow

_REPOSITORIES = 50  # repositories whose findings and carriers are read together
_WORST = 900  # worst findings read whole, with their carriers, per statement

_a, _o = t.artifact.c, content_finding.c
CARRIED_VERSIONS = carriers.in_repositories(_a.repository_id, _o.vulnerability, _o.package,
                                            _o.version, _o.fix_version)


@dataclass(slots=True)
class Count:
    """One (package, installed version, vulnerability): at its worst, and how many."""

    severity: int
    fix_version: str
    findings: int
    worst: int  # the id of a finding at that worst
    repositories: set[int]  # the ids of the repositories they are in


Counts = dict[tuple[str, str, str], Count]
# (repository id, vulnerability, package) -> (versions, fix versions) its images carry now
Carried = dict[tuple[int, str, str], tuple[set[str], set[str]]]


def _carried(conn: Connection, repositories: list[int]) -> Carried:
    out: Carried = {}
    for repo, vuln, pkg, version, fix in driver_rows(conn, CARRIED_VERSIONS,
                                                     {"repositories": repositories}):
        slot = out.get((repo, vuln, pkg))
        if slot is None:
            slot = out[(repo, vuln, pkg)] = (set(), set())
        slot[0].add(version)
        if fix:
            slot[1].add(fix)
    return out


def _add(counts: Counts, package: str, versions: set[str] | list[str], vulnerability: str,
         severity: int, fix: str, finding_id: int, repository: int) -> None:
    for version in versions:
        slot = counts.get((package, version, vulnerability))
        if slot is None:
            counts[(package, version, vulnerability)] = Count(severity, fix, 1, finding_id,
                                                               {repository})
            continue
        slot.findings += 1
        slot.repositories.add(repository)
        # The worst (severity, fix) wins, the lowest finding id among equals: the same worst
        # row whatever order the rows come in (``store/plan.py`` keeps the lowest id too).
        if (severity, fix, -finding_id) > (slot.severity, slot.fix_version, -slot.worst):
            slot.severity, slot.fix_version, slot.worst = severity, fix, finding_id


# The columns of each open finding the plan reads (``members``).
MEMBER_COLUMNS = (t.finding.c.id, t.finding.c.repository_id, t.finding.c.vulnerability,
                  t.finding.c.package, t.finding.c.severity, t.finding.c.fix_version,
                  t.finding.c.installed_versions, t.finding.c.ignored, t.repository.c.project,
                  t.repository.c.name, t.registry.c.name, t.repository.c.registry_id)


def members(conn: Connection, query: FindingQuery, rules: IgnoreRules | None
            ) -> Iterator[tuple[tuple[Any, ...], set[str] | list[str], str]]:
    """Each open finding ``query`` matches in SQL (``MEMBER_COLUMNS``), with the installed
    versions its images carry now and its fix (the stored one, else the lowest its images
    report), as the plan counts them. Both come from the finding's carrier summary, read with
    it and its repository's mark in one statement; a marked repository's findings are read
    again with their carriers a batch of repositories at a time. A finding no image carries
    now counts as stored."""
    f, s, d = t.finding.c, cs.carrier_summary.c, cs.carrier_dirty.c
    stmt = findings.matching(MEMBER_COLUMNS, query, rules)
    summarised = (stmt.add_columns(s.fix, s.carriers, d.version)
                  .outerjoin(cs.carrier_summary, s.finding_id == f.id)
                  .outerjoin(cs.carrier_dirty, d.repository_id == f.repository_id))
    live: set[int] = set()
    # The findings read again with their carriers: only those (a summary JSON could not hold
    # leaves its repository's other findings counted from their summaries).
    deferred: set[int] = set()
    versions_of = cs.versions
    for row in driver_rows(conn, summarised):
        fix, encoded, mark = row[-3:]
        if mark is not None or encoded == cs.READ_LIVE:
            live.add(row[1])
            deferred.add(row[0])
        elif encoded is None:  # no image carries it now: as stored
            yield row[:-3], [v for v in row[6].split(", ") if v], row[5]
        else:
            yield row[:-3], versions_of(encoded), row[5] or fix
    repos = sorted(live)
    for start in range(0, len(repos), _REPOSITORIES):
        batch = repos[start:start + _REPOSITORIES]
        carried = _carried(conn, batch)
        for row in driver_rows(conn, stmt.where(f.repository_id.in_(batch))):
            if row[0] not in deferred:
                continue
            versions, fixes = carried.get((row[1], row[2], row[3])) or (None, None)
            if versions is None or fixes is None:  # no image carries it now: as stored
                yield row, [v for v in row[6].split(", ") if v], row[5]
            else:
                yield row, versions, row[5] or min(fixes, default="")


def counted(conn: Connection, query: FindingQuery, rules: IgnoreRules | None, now: datetime
            ) -> Iterator[tuple[FindingRow, str, Vuln, int, set[int]]]:
    """Per (package, installed version, vulnerability) of the open findings ``query``
    matches: its worst finding with carriers, the version, the vulnerability at its worst
    (severity, fix version), how many findings it covers and the repositories they are in;
    for ``remedy.plan_counted``.
    The same counts as ``remedy.plan_findings`` over ``findings.by_repository``."""
    # As ``findings`` has it: without rules (None) the stored flag, else what they say now.
    asked = rules if rules is not None and rules and not query.include_ignored else None
    counts: Counts = {}
    for row, versions, fix in members(conn, query, rules):
        id_, repo, vuln, pkg, severity, _, _, _, project, name, registry, _ = row
        if asked is not None and asked.may_match(vuln, pkg) and asked.reason(
                FindingKey(registry, project, name, vuln, pkg), now):
            continue
        _add(counts, pkg, versions, vuln, severity, fix, id_, repo)
    yield from with_worst(conn, counts, now)


def with_worst(conn: Connection, counts: Counts, now: datetime, *, each: bool = False
               ) -> Iterator[tuple[FindingRow, str, Vuln, int, set[int]]]:
    """Each of ``counts`` with its worst finding read whole, with its carriers (``each``:
    read finding by finding, for a few counts of a large registry)."""
    f = t.finding.c
    worst = sorted({c.worst for c in counts.values()})
    rows: dict[int, FindingRow] = {}
    everything = FindingQuery(include_ignored=True)
    for start in range(0, len(worst), _WORST):
        ids = worst[start:start + _WORST]
        heads = list(findings.heads_where(conn, everything, None, now, f.id.in_(ids)))
        rows.update(zip((h.id for h in heads), findings.with_carriers(conn, heads, each=each),
                        strict=True))
    for (_, version, vulnerability), c in counts.items():
        row = rows.get(c.worst)
        if row is not None:
            yield row, version, Vuln(vulnerability, Severity(c.severity), c.fix_version,
                                     row.cvss_v3, row.cvss_vector), c.findings, c.repositories


