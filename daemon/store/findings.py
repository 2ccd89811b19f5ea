"""Open findings as ``scanwatch findings`` lists them: filtered, ordered and limited in SQL.

A finding row says what, where and since when; which images carry it now (digests, tags, the
installed versions) is a join through ``content_finding`` (``carriers.py``). Both ways read
the rows in output order from ``ix_finding_order`` and join the carriers a chunk at a time, so
memory is bounded by a chunk rather than by the registry:

* ``page``: the first rows, and a count of the rest: the first screen of a large registry.
* ``ordered``: every matching row, streamed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, false, func, literal_column, or_, select, true, tuple_
from sqlalchemy.engine import Connection

from daemon.ignores import IgnoreRules
from daemon.model import FindingKey, Severity
from daemon.store import carrier_summary, carriers
from daemon.store import tables as t
from daemon.store.base import driver_rows
from daemon.store.carriers import Carrier, Summary
from daemon.store.tables import as_utc

_REPOSITORY_BATCH = 20  # repositories whose images are decoded together in ``ordered``
_ORDERED_CHUNK = 2000  # findings in output order whose carriers are read together
FIXABLE_FIRST = t.finding.c.fix_version == literal_column("''")  # False (fixable) sorts first


@dataclass(frozen=True)
class FindingQuery:
    """What ``findings`` asks for; the SQL side of its filters."""

    registry: str | None = None
    project: str | None = None
    repository: str | None = None
    min_severity: Severity | None = None
    fixable: bool | None = None
    include_ignored: bool = False
    package: str | None = None


# Heads and rows are built once per finding of a registry-wide listing: plain slotted classes
# (a frozen dataclass costs six times as much to build), never changed after.
@dataclass(slots=True)
class FindingHead:
    """A finding row as stored, with whether it is ignored now (no carriers yet)."""

    id: int
    repository_id: int
    key: FindingKey
    severity: Severity
    fix_version: str
    installed_versions: str
    first_seen: datetime
    opened_at: datetime
    last_seen: datetime
    ignored: bool
    ignore_reason: str


@dataclass(slots=True)
class FindingRow:
    """An open finding as ``scanwatch findings`` shows it: the fix first."""

    key: FindingKey
    severity: Severity
    fix_version: str
    installed_versions: tuple[str, ...]
    digests: tuple[str, ...]
    tags: tuple[str, ...]
    first_seen: datetime
    opened_at: datetime
    last_seen: datetime
    ignored: bool = False
    ignore_reason: str = ""
    ecosystem: str = ""  # as its reports name it ("" where they name none)
    cvss_v3: float | None = None  # the highest CVSS v3 score of the images carrying it now
    cvss_vector: str = ""  # that score's vector ("" where none is known)
    # (installed version, the digests whose reports carry it), by version
    carriers: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def fixable(self) -> bool:
        return bool(self.fix_version)


Keep = Callable[[FindingHead], bool]


def matching(columns: Sequence[Any], query: FindingQuery, rules: IgnoreRules | None
             ) -> Select[Any]:
    """``columns`` of the open findings ``query`` matches, in SQL (the stored ``ignored``
    flag stands for the rules only where there are none: ``rules is None``)."""
    f, r, g = t.finding.c, t.repository.c, t.registry.c
    stmt = (select(*columns)
            .join(t.repository, r.id == f.repository_id)
            .join(t.registry, g.id == r.registry_id)
            .where(f.resolved_at.is_(None)))
    for column, value in ((g.name, query.registry), (r.project, query.project),
                          (r.name, query.repository)):
        if value is not None:
            stmt = stmt.where(column == value)
    if query.min_severity is not None:
        stmt = stmt.where(f.severity >= int(query.min_severity))
    if query.package is not None:
        stmt = stmt.where(f.package == query.package)
    if not query.include_ignored and rules is None:
        stmt = stmt.where(f.ignored.is_(False))
    if query.fixable is not None:  # as the index has it: a range of ix_finding_order
        stmt = stmt.where(FIXABLE_FIRST == (false() if query.fixable else true()))  # noqa: SIM300
    return stmt


def _select(query: FindingQuery, rules: IgnoreRules | None) -> Select[Any]:
    f, r, g = t.finding.c, t.repository.c, t.registry.c
    return matching((f.id, f.repository_id, f.vulnerability, f.package, f.severity,
                     f.fix_version, f.installed_versions, f.first_seen, f.opened_at, f.last_seen,
                     f.ignored, f.ignore_reason, r.project, r.name, g.name.label("registry")),
                    query, rules)


def heads_where(conn: Connection, query: FindingQuery, rules: IgnoreRules | None,
                now: datetime, *condition: Any) -> Iterator[FindingHead]:
    """The matching findings that also meet ``condition`` (SQL), in no particular order."""
    yield from _heads(driver_rows(conn, _select(query, rules).where(*condition)), query,
                      rules, now, None)


_SEVERITY = {int(s): s for s in Severity}


def head_of(row: Sequence[Any]) -> FindingHead:
    """The head of one row of ``_select``'s columns, its ignored flag and reason as given."""
    return next(_heads([row], FindingQuery(include_ignored=True), None, datetime.min, None))


def _heads(rows: Iterable[Any], query: FindingQuery, rules: IgnoreRules | None, now: datetime,
           keep: Keep | None) -> Iterator[FindingHead]:
    severity = _SEVERITY
    for (id_, repository_id, vulnerability, package, level, fix_version, installed, first_seen,
         opened_at, last_seen, ignored, why, project, name, registry) in rows:
        key = FindingKey(registry, project, name, vulnerability, package)
        if rules is not None:  # what the rules say now: a rule added or removed counts at once
            why = rules.reason(key, now)
            ignored = bool(why)
            if ignored and not query.include_ignored:
                continue
        head = FindingHead(id_, repository_id, key, severity[level], fix_version, installed,
                           as_utc(first_seen), as_utc(opened_at), as_utc(last_seen),
                           bool(ignored), why)
        if keep is None or keep(head):
            yield head


def in_order(query: FindingQuery, rules: IgnoreRules | None, kev: bool | None = None
             ) -> Select[Any]:
    """The statement of the matching findings in output order (fixable first, most severe,
    package, vulnerability, where): a walk of ``ix_finding_order``. ``kev`` True/False: only
    the findings whose CVE is / is not in the KEV copy in force (``intel_kev``)."""
    f, r, g = t.finding.c, t.repository.c, t.registry.c
    stmt = _select(query, rules)
    if kev is not None:
        listed = f.vulnerability.in_(select(t.intel_kev.c.cve))
        stmt = stmt.where(listed if kev else ~listed)
    return stmt.order_by(FIXABLE_FIRST, f.severity.desc(), f.package,
                         f.vulnerability, g.name, r.project, r.name)


def heads_in_order(conn: Connection, query: FindingQuery, *, rules: IgnoreRules | None,
                   now: datetime, keep: Keep | None = None) -> Iterator[FindingHead]:
    """Matching findings in output order, streamed from the database without carriers; with
    a KEV copy in force, the findings it lists come first (README: known exploited first),
    each part in output order."""
    parts: list[bool | None] = [None]
    if conn.execute(select(t.intel_kev.c.cve).limit(1)).first() is not None:
        parts = [True, False]
    for kev in parts:
        yield from _heads(driver_rows(conn, in_order(query, rules, kev)), query, rules, now,
                          keep)


def count(conn: Connection, query: FindingQuery, rules: IgnoreRules | None) -> int:
    """How many findings match in SQL: exact where no rule is in force (``not rules``) and no
    Python filter applies, as ``heads_in_order`` would yield them."""
    return int(conn.execute(select(func.count()).select_from(
        _select(query, rules).subquery())).scalar_one())


def _row(head: FindingHead, seen: list[Carrier]) -> FindingRow:
    if not seen:
        return _uncarried(head)
    return summarised(head, carriers.summarise(seen))


def _uncarried(head: FindingHead) -> FindingRow:
    """A finding no counting image carries now: the versions its row last stored."""
    stored = tuple(v for v in head.installed_versions.split(", ") if v)
    return FindingRow(head.key, head.severity, head.fix_version, stored, (), (),
                      head.first_seen, head.opened_at, head.last_seen, head.ignored,
                      head.ignore_reason, carriers=tuple((v, ()) for v in sorted(stored)))


def summarised(head: FindingHead, s: Summary) -> FindingRow:
    return FindingRow(
        head.key, head.severity, head.fix_version or s.fix,
        tuple([v for v, _ in s.carriers]), s.digests, s.tags, head.first_seen, head.opened_at,
        head.last_seen, head.ignored, head.ignore_reason, s.ecosystem, s.cvss_v3,
        s.cvss_vector, s.carriers)


def with_carriers(conn: Connection, heads: Sequence[FindingHead], *, each: bool = False
                  ) -> list[FindingRow]:
    """``heads`` (in their order) with the images that carry each now (``each``: read
    finding by finding, ``carriers.carried``)."""
    live = carrier_summary.LIVE
    kept = carrier_summary.read(conn, [h.id for h in heads])
    wanted = {(h.repository_id, h.key.vulnerability, h.key.package) for h in heads
              if kept.get(h.id, live) is live}
    carried = carriers.carried(conn, wanted, each=each) if wanted else {}
    rows = []
    for h in heads:
        summary = kept.get(h.id, live)
        if summary is None:
            rows.append(_uncarried(h))
        elif isinstance(summary, Summary):
            rows.append(summarised(h, summary))
        else:
            rows.append(_row(h, carried.get((h.repository_id, h.key.vulnerability,
                                             h.key.package), [])))
    return rows


def page(conn: Connection, query: FindingQuery, *, limit: int, rules: IgnoreRules | None,
         now: datetime, keep: Keep | None = None) -> tuple[list[FindingRow], int]:
    """The first ``limit`` findings in output order (read through the index), and how many
    more match."""
    heads = heads_in_order(conn, query, rules=rules, now=now, keep=keep)
    first = list(itertools.islice(heads, limit))
    if keep is None and not rules:  # nothing decided in Python: SQL counts the rest
        rest = max(0, count(conn, query, rules) - len(first))
    else:
        rest = sum(1 for _ in heads)
    return with_carriers(conn, first), rest


def by_repository(conn: Connection, query: FindingQuery, *, rules: IgnoreRules | None,
                  now: datetime, keep: Keep | None = None) -> Iterator[list[FindingRow]]:
    """Every matching finding with its carriers, a batch of repositories at a time."""
    f = t.finding.c
    matching = _select(query, rules).subquery()
    repos = sorted(int(x) for x in conn.execute(
        select(matching.c.repository_id).distinct()).scalars())
    for start in range(0, len(repos), _REPOSITORY_BATCH):
        batch = repos[start:start + _REPOSITORY_BATCH]
        rows = driver_rows(conn, _select(query, rules).where(f.repository_id.in_(batch)))
        yield with_carriers(conn, list(_heads(rows, query, rules, now, keep)))


def ordered(conn: Connection, query: FindingQuery, *, rules: IgnoreRules | None, now: datetime,
            keep: Keep | None = None) -> Iterator[FindingRow]:
    """Every matching finding with its carriers, in output order, streamed: the rows come
    from ``ix_finding_order`` a chunk at a time, each chunk's carriers from one join."""
    for chunk in _by_pairs(heads_in_order(conn, query, rules=rules, now=now, keep=keep)):
        yield from with_carriers(conn, chunk)


def _by_pairs(heads: Iterable[FindingHead]) -> Iterator[list[FindingHead]]:
    """``heads`` in chunks of about ``_ORDERED_CHUNK``, each ending where a (package,
    vulnerability) ends: the carriers of a pair are read for every repository at once, so a
    pair split over two chunks had its thousands of contents read twice (a third of the rows
    read at 100,000 artifacts)."""
    chunk: list[FindingHead] = []
    for head in heads:
        if len(chunk) >= _ORDERED_CHUNK:
            last = chunk[-1].key
            if (head.key.package, head.key.vulnerability) != (last.package, last.vulnerability) \
                    or len(chunk) >= 4 * _ORDERED_CHUNK:  # a pair in very many repositories
                yield chunk
                chunk = []
        chunk.append(head)
    if chunk:
        yield chunk


def rows_where(conn: Connection, now: datetime, *condition: Any) -> Iterator[FindingRow]:
    """Every open finding (ignored or not, as stored) that meets ``condition``, with its
    carriers, a chunk at a time."""
    heads = heads_where(conn, FindingQuery(include_ignored=True), None, now, *condition)
    while chunk := list(itertools.islice(heads, _ORDERED_CHUNK)):
        yield from with_carriers(conn, chunk)


def overdue(conn: Connection, spans: Mapping[Severity, timedelta], now: datetime
            ) -> Iterator[FindingRow]:
    """The open findings past their deadline at ``now``: first seen more than their severity's
    span in ``spans`` ago (``sla.deadlines``; a severity without one is never overdue), as
    the alerts' SLA stage reckons."""
    f = t.finding.c
    if not spans:
        return iter(())
    return rows_where(conn, now, or_(*(and_(f.severity == int(severity), f.first_seen < now - span)
                                       for severity, span in spans.items())))


def open_pairs(conn: Connection) -> set[tuple[str, str]]:
    """The (vulnerability, package) of every open finding."""
    f = t.finding.c
    return {(v, p) for v, p in driver_rows(conn, select(f.vulnerability, f.package).distinct()
                                           .where(f.resolved_at.is_(None)))}


def of_pairs(conn: Connection, pairs: Collection[tuple[str, str]], now: datetime
             ) -> Iterator[FindingRow]:
    """The open findings of these (vulnerability, package)."""
    f = t.finding.c
    wanted = sorted(pairs)
    for start in range(0, len(wanted), 400):
        yield from rows_where(conn, now, tuple_(f.vulnerability, f.package).in_(
            wanted[start:start + 400]))


def output_order(x: FindingRow) -> tuple[int, int, str, str, str, str, str]:
    """The sort key of ``ordered``'s output: fixable first, most severe, package,
    vulnerability, where."""
    k = x.key
    return (0 if x.fix_version else 1, -int(x.severity), k.package, k.vulnerability,
            k.registry, k.project, k.repository)
