"""The remediation plan materialised (issue 18): what "Fix first" reads on a large registry.

``actions.counted`` reads every matching finding and the versions its images carry: seconds
on a registry of 100,000 images, for every filter. Here that count is done once per state of
history, by the writer after each run (``Store.build_plan``), and kept in ``plan_bucket``
(migration 20): one row per (registry, project, severity, listed fix or not, stored ignored
flag, ignored by the rules in force, package, installed version, vulnerability) with how many
findings it covers, their worst fix and the lowest finding id at that fix. Every filter the
pages offer but the repository (registry, project, severity, fixable, package) is then a
GROUP BY over a table a fraction of the findings' size (a repository's plan is counted from
its own findings: ``actions.counted`` on one repository is small). Only the actions shown
are read whole, as ``counted`` reads them (``actions.with_worst``).

``plan_state`` says which history (``data_version``) and which ignore rules
(``fingerprint``: the rules active then, whatever their reasons) the rows were counted under.
``answer`` returns None when either differs from now: a new scan, run or tag move, an ignore
rule added, removed, changed or expired, an allowlist or VEX statement read anew; the caller
then builds again or counts as before. State and rows are read between two reads of the state,
so a build committed meanwhile is never half seen.

The counts are ``counted``'s exactly (``tests/store/test_actions_counted.py``): the same
members (``actions.members``), the same worst (severity, fix) and the same lowest id among
equals. The repositories of each vulnerability (an action's reach) are not kept: the pages
show none; ``findings --by action`` counts them with ``counted``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    case,
    func,
    select,
)
from sqlalchemy.engine import Connection

from daemon.ignores import IgnoreRules, rule_active
from daemon.model import FindingKey
from daemon.remedy import Vuln
from daemon.store import actions
from daemon.store import statements as q
from daemon.store import summary as page_summary
from daemon.store import tables as t
from daemon.store.base import driver_rows
from daemon.store.findings import FindingQuery, FindingRow
from daemon.store.tables import UTCDateTime

_md = MetaData()  # the latest shape; migration 20 creates it
plan_bucket = Table(
    "plan_bucket", _md,
    Column("registry_id", Integer(), nullable=False),
    Column("project", String(), nullable=False),
    Column("severity", Integer(), nullable=False),
    Column("listed", Boolean(), nullable=False),  # the finding row has a fix version
    Column("ignored", Boolean(), nullable=False),  # the finding row's stored flag
    Column("hidden", Boolean(), nullable=False),  # ignored by the rules counted under
    Column("package", String(), nullable=False),
    Column("version", String(), nullable=False),
    Column("vulnerability", String(), nullable=False),
    Column("findings", Integer(), nullable=False),
    Column("fix", String(), nullable=False),  # the highest fix among them
    Column("worst", Integer(), nullable=False),  # the lowest finding id with that fix
)
plan_state = Table(
    "plan_state", _md,
    Column("id", Integer(), primary_key=True, autoincrement=False),  # always 1
    Column("data_version", String(), nullable=False),
    Column("rules", String(), nullable=False),
    Column("built_at", UTCDateTime(), nullable=True),
    Column("pages", String(), nullable=True),  # migration 21: summary.dumps of that history
)
_INSERT = 5000  # bucket rows per insert
_SHOWN = 300  # (package, version) pairs whose buckets are read per statement

# (registry id, project, severity, listed, ignored, hidden, package, version, vulnerability)
BucketKey = tuple[int, str, int, bool, bool, bool, str, str, str]


@dataclass(slots=True)
class Bucket:
    findings: int
    fix: str
    worst: int


class Counted(NamedTuple):
    version: str  # the history counted
    buckets: dict[BucketKey, Bucket]
    pages: str  # the overview's and the chart's counts of that history (``summary.dumps``)


def fingerprint(rules: IgnoreRules, now: datetime) -> str:
    """What the rules in force at ``now`` match (not why): equal whenever they hide the same
    findings, whatever the day; changed by a rule added, removed, edited or expired."""
    parts = [json.dumps(["rule", r.vulnerability, r.package, r.registries, r.projects,
                         r.repositories])
             for r in (*rules.rules, *(s.rule for s in rules.stored)) if rule_active(r, now)]
    parts += [json.dumps(["allowlist", a.registry, a.project, sorted(a.cve_ids)])
              for a in rules.allowlists if a.expires_at is None or now < a.expires_at]
    parts += [json.dumps(["vex", v.vulnerability, v.scopes, v.packages])
              for v in rules.vex if v.silences]
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()


def data_version(conn: Connection) -> tuple[int, ...]:
    """What changes whenever history does: the newest id of each table a run, a scan or a tag
    move writes to (each an O(1) read of its primary key). A page computed from history stays
    right while this stays the same (with the same ignore rules, on the same day)."""
    tables = (t.finding, t.finding_event, t.scan, t.tag, t.artifact, t.schedule_run)
    row = conn.execute(select(*(select(func.max(x.c.id)).scalar_subquery() for x in tables))
                       ).one()
    return tuple(int(v or 0) for v in row)


def _version_text(conn: Connection) -> str:
    return ",".join(str(v) for v in data_version(conn))


def count(conn: Connection, rules: IgnoreRules, now: datetime) -> Counted:
    """Every open finding counted into buckets under ``rules`` at ``now``, the pages'
    summary (``store/summary.py``), and the history they were counted from (read first: rows
    written meanwhile make it look older, never newer, so the next reader counts again rather
    than trust a stale plan)."""
    version = _version_text(conn)
    buckets: dict[BucketKey, Bucket] = {}
    for row, versions, fix in actions.members(conn, FindingQuery(include_ignored=True), None):
        (id_, _, vuln, pkg, severity, listed, _, ignored, project, name, registry,
         registry_id) = row
        hidden = bool(rules) and rules.may_match(vuln, pkg) and bool(
            rules.reason(FindingKey(registry, project, name, vuln, pkg), now))
        for version_ in versions:
            key = (int(registry_id), project, int(severity), bool(listed), bool(ignored),
                   hidden, pkg, version_, vuln)
            slot = buckets.get(key)
            if slot is None:
                buckets[key] = Bucket(1, fix, id_)
                continue
            slot.findings += 1
            if (fix, -id_) > (slot.fix, -slot.worst):
                slot.fix, slot.worst = fix, id_
    return Counted(version, buckets, page_summary.dumps(page_summary.count(conn)))


def save(conn: Connection, counted: Counted, rules: IgnoreRules, now: datetime) -> None:
    """The counted buckets and summary replace those in force, in the caller's transaction.
    The state row (migration 20 writes it) is locked first (PostgreSQL): two instances saving
    at once save one after the other."""
    version, buckets = counted.version, counted.buckets
    s = plan_state.c
    conn.execute(select(s.id).where(s.id == 1).with_for_update()).first()
    conn.execute(plan_bucket.delete())
    names = [c.name for c in plan_bucket.columns]
    rows = [dict(zip(names, (*key, b.findings, b.fix, b.worst), strict=True))
            for key, b in buckets.items()]
    for start in range(0, len(rows), _INSERT):
        q.bulk_insert(conn, plan_bucket, rows[start:start + _INSERT])
    values = {"data_version": version, "rules": fingerprint(rules, now), "built_at": now,
              "pages": counted.pages}
    if conn.execute(plan_state.update().where(s.id == 1).values(**values)).rowcount == 0:
        conn.execute(plan_state.insert().values(id=1, **values))


def _state(conn: Connection) -> tuple[str, str] | None:
    s = plan_state.c
    row = conn.execute(select(s.data_version, s.rules).where(s.id == 1)).first()
    return None if row is None else (row[0], row[1])


def summary(conn: Connection) -> page_summary.Summary | None:
    """The pages' summary the writer kept with the plan, if it is of the history now."""
    s = plan_state.c
    row = conn.execute(select(s.data_version, s.pages).where(s.id == 1)).first()
    if row is None or row[1] is None or row[0] != _version_text(conn):
        return None
    return page_summary.loads(row[1])


def _where(query: FindingQuery, rules: IgnoreRules | None) -> list[Any]:
    """The query's filters on the buckets (``findings.matching``'s, bucket by bucket)."""
    b, g = plan_bucket.c, t.registry.c
    where: list[Any] = []
    if query.registry is not None:
        where.append(b.registry_id.in_(select(g.id).where(g.name == query.registry)))
    if query.project is not None:
        where.append(b.project == query.project)
    if query.min_severity is not None:
        where.append(b.severity >= int(query.min_severity))
    if query.fixable is not None:
        where.append(b.listed.is_(query.fixable))
    if query.package is not None:
        where.append(b.package == query.package)
    if not query.include_ignored:
        if rules is None:  # as ``findings`` has it: without rules, the stored flag
            where.append(b.ignored.is_(False))
        elif rules:
            where.append(b.hidden.is_(False))
    return where


def _groups(conn: Connection, where: Sequence[Any]) -> list[tuple[str, str]]:
    """Every (package, installed version) the filters leave, in ``remedy.sort_key`` order:
    fixable first (its worst fix at its worst severity), the worst, the most
    vulnerabilities, by package and version."""
    b = plan_bucket.c
    fixed = case((func.trim(b.fix) != "", 1), else_=0)
    per_vuln = (select(b.package, b.version, func.max(b.severity * 2 + fixed).label("k"),
                       func.max(b.severity).label("severity"))
                .where(*where).group_by(b.package, b.version, b.vulnerability).subquery())
    v = per_vuln.c
    rows = list(conn.execute(select(v.package, v.version, func.max(v.k % 2), func.max(v.severity),
                                    func.count()).group_by(v.package, v.version)))
    rows.sort(key=lambda r: (not r[2], -r[3], -r[4], r[0], r[1]))
    return [(r[0], r[1]) for r in rows]


def _counts(conn: Connection, where: Sequence[Any], shown: list[tuple[str, str]]
            ) -> actions.Counts:
    b = plan_bucket.c
    counts: actions.Counts = {}
    for start in range(0, len(shown), _SHOWN):
        part = set(shown[start:start + _SHOWN])
        # By package through ix_plan_bucket_group (a pair IN is a scan of the whole index on
        # SQLite), the other versions of those packages dropped here.
        for pkg, version, vuln, severity, fix, n, worst in driver_rows(conn, select(
                b.package, b.version, b.vulnerability, b.severity, b.fix,
                func.sum(b.findings), func.min(b.worst))
                .where(*where, b.package.in_(sorted({p for p, _ in part})))
                .group_by(b.package, b.version, b.vulnerability, b.severity, b.fix)):
            if (pkg, version) not in part:
                continue
            slot = counts.get((pkg, version, vuln))
            if slot is None:
                counts[(pkg, version, vuln)] = actions.Count(severity, fix, int(n), worst, set())
                continue
            slot.findings += int(n)
            if (severity, fix, -worst) > (slot.severity, slot.fix_version, -slot.worst):
                slot.severity, slot.fix_version, slot.worst = severity, fix, worst
    return counts


@dataclass(frozen=True)
class Answer:
    """The shown actions' counts (for ``remedy.plan_counted``) and how many
    actions the filters leave in all."""

    groups: list[tuple[FindingRow, str, Vuln, int, set[int]]]
    total: int


def answer(conn: Connection, query: FindingQuery, rules: IgnoreRules | None, now: datetime,
           limit: int | None = None, version: str | None = None, offset: int = 0
           ) -> Answer | None:
    """The plan of ``query`` from the buckets, its ``limit`` actions from ``offset`` (every
    one without), or None when they were counted from another history than ``version`` (by
    default the one now) or under other rules (or never), or the query names a repository
    (``actions.counted`` serves that one)."""
    if query.repository is not None:
        return None
    current = version if version is not None else _version_text(conn)
    state = _state(conn)
    asked = rules is not None and bool(rules) and not query.include_ignored
    if state is None or state[0] != current or (asked and rules is not None
                                                and state[1] != fingerprint(rules, now)):
        return None
    where = _where(query, rules)
    groups = _groups(conn, where)
    shown = groups[offset:] if limit is None else groups[offset:offset + limit]
    counts = _counts(conn, where, shown)
    if _state(conn) != state:
        return None  # counted again meanwhile: the rows may be of either
    return Answer(list(actions.with_worst(conn, counts, now, each=True)), len(groups))
