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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, false, func, literal_column, select, true
from sqlalchemy.engine import Connection

from daemon.ignores import IgnoreRules
from daemon.model import FindingKey, Severity
from daemon.store import carriers
from daemon.store import tables as t
from daemon.store.carriers import Carried

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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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
    # (installed version, the digests whose reports carry it), by version
    carriers: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def fixable(self) -> bool:
        return bool(self.fix_version)


Keep = Callable[[FindingHead], bool]


def _select(query: FindingQuery, rules: IgnoreRules | None) -> Select[Any]:
    f, r, g = t.finding.c, t.repository.c, t.registry.c
    stmt = (select(f.id, f.repository_id, f.vulnerability, f.package, f.severity, f.fix_version,
                   f.installed_versions, f.first_seen, f.opened_at, f.last_seen, f.ignored,
                   f.ignore_reason, r.project, r.name, g.name.label("registry"))
            .join(t.repository, r.id == f.repository_id)
            .join(t.registry, g.id == r.registry_id)
            .where(f.resolved_at.is_(None)))
    for column, value in ((g.name, query.registry), (r.project, query.project),
                          (r.name, query.repository)):
        if value is not None:
            stmt = stmt.where(column == value)
    if query.min_severity is not None:
        stmt = stmt.where(f.severity >= int(query.min_severity))
    if not query.include_ignored and rules is None:
        stmt = stmt.where(f.ignored.is_(False))
    if query.fixable is not None:  # as the index has it: a range of ix_finding_order
        stmt = stmt.where(FIXABLE_FIRST == (false() if query.fixable else true()))  # noqa: SIM300
    return stmt


def _heads(rows: Iterable[Any], query: FindingQuery, rules: IgnoreRules | None, now: datetime,
           keep: Keep | None) -> Iterator[FindingHead]:
    for row in rows:
        key = FindingKey(row.registry, row.project, row.name, row.vulnerability, row.package)
        ignored, why = row.ignored, row.ignore_reason
        if rules is not None:  # what the rules say now: a rule added or removed counts at once
            why = rules.reason(key, now)
            ignored = bool(why)
            if ignored and not query.include_ignored:
                continue
        head = FindingHead(row.id, row.repository_id, key, Severity(row.severity),
                           row.fix_version, row.installed_versions, row.first_seen,
                           row.opened_at, row.last_seen, ignored, why)
        if keep is None or keep(head):
            yield head


def in_order(query: FindingQuery, rules: IgnoreRules | None) -> Select[Any]:
    """The statement of the matching findings in output order (fixable first, most severe,
    package, vulnerability, where): a walk of ``ix_finding_order``."""
    f, r, g = t.finding.c, t.repository.c, t.registry.c
    return _select(query, rules).order_by(FIXABLE_FIRST, f.severity.desc(), f.package,
                                          f.vulnerability, g.name, r.project, r.name)


def heads_in_order(conn: Connection, query: FindingQuery, *, rules: IgnoreRules | None,
                   now: datetime, keep: Keep | None = None) -> Iterator[FindingHead]:
    """Matching findings in output order, streamed from the database without carriers."""
    rows = conn.execution_options(yield_per=1000).execute(in_order(query, rules))
    yield from _heads(rows, query, rules, now, keep)


def count(conn: Connection, query: FindingQuery, rules: IgnoreRules | None) -> int:
    """How many findings match in SQL: exact where no rule is in force (``not rules``) and no
    Python filter applies, as ``heads_in_order`` would yield them."""
    return int(conn.execute(select(func.count()).select_from(
        _select(query, rules).subquery())).scalar_one())


def _row(head: FindingHead, seen: Carried) -> FindingRow:
    versions = tuple(sorted({v for d in seen.values() for v in d[0]})) or tuple(
        v for v in head.installed_versions.split(", ") if v)
    fixes = sorted({x for d in seen.values() for x in d[1] if x})
    carried: dict[str, list[str]] = {v: [] for v in versions}
    for digest in sorted(seen):
        for version in seen[digest][0]:
            carried.setdefault(version, []).append(digest)
    return FindingRow(
        key=head.key, severity=head.severity,
        fix_version=head.fix_version or (fixes[0] if fixes else ""),
        installed_versions=versions, digests=tuple(sorted(seen)),
        tags=tuple(sorted({tg for d in seen.values() for tg in d[2]})),
        first_seen=head.first_seen, opened_at=head.opened_at, last_seen=head.last_seen,
        ignored=head.ignored, ignore_reason=head.ignore_reason,
        ecosystem=min((e for d in seen.values() for e in d[3]), default=""),
        carriers=tuple((v, tuple(ds)) for v, ds in sorted(carried.items())))


def with_carriers(conn: Connection, heads: Sequence[FindingHead]) -> list[FindingRow]:
    """``heads`` (in their order) with the images that carry each now."""
    wanted = {(h.repository_id, h.key.vulnerability, h.key.package) for h in heads}
    carried = carriers.carried(conn, wanted)
    return [_row(h, carried.get((h.repository_id, h.key.vulnerability, h.key.package), {}))
            for h in heads]


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
        rows = conn.execute(_select(query, rules).where(f.repository_id.in_(batch)))
        yield with_carriers(conn, list(_heads(rows, query, rules, now, keep)))


def ordered(conn: Connection, query: FindingQuery, *, rules: IgnoreRules | None, now: datetime,
            keep: Keep | None = None) -> Iterator[FindingRow]:
    """Every matching finding with its carriers, in output order, streamed: the rows come
    from ``ix_finding_order`` a chunk at a time, each chunk's carriers from one join."""
    heads = heads_in_order(conn, query, rules=rules, now=now, keep=keep)
    while chunk := list(itertools.islice(heads, _ORDERED_CHUNK)):
        yield from with_carriers(conn, chunk)


def output_order(x: FindingRow) -> tuple[int, int, str, str, str, str, str]:
    """The sort key of ``ordered``'s output: fixable first, most severe, package,
    vulnerability, where."""
    k = x.key
    return (0 if x.fix_version else 1, -int(x.severity), k.package, k.vulnerability,
            k.registry, k.project, k.repository)
