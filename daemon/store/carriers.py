"""Which images carry a finding now, answered in SQL (issue 11).

A report content is stored once as a compressed blob (``content.py``); ``content_finding``
holds the same occurrences one row each (content id, vulnerability, package, installed
version, fix version, ecosystem, CVSS v3 score and vector), written with the content and never
changed after (contents are immutable). The images that carry a finding now are then a join:
the finding's (vulnerability, package) in ``ix_content_finding_key``, the artifacts with that
content (``ix_artifact_content``) that count and sit in the finding's repository. Nothing to keep in
step when artifacts start or stop counting: that stays on the artifact row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    bindparam,
    select,
)
from sqlalchemy.engine import Connection

from daemon.model import Occurrence
from daemon.store import statements as q
from daemon.store import tables as t
from daemon.store.base import driver_rows, driver_rows_each
from daemon.store.content import unpack_rows

_md = MetaData()
content_finding = Table(
    "content_finding", _md,
    Column("content_id", Integer(), nullable=False),
    Column("vulnerability", String(), nullable=False),
    Column("package", String(), nullable=False),
    Column("version", String(), nullable=False),
    Column("fix_version", String(), nullable=False),
    Column("ecosystem", String(), nullable=False),
    # migration 18: the occurrence's CVSS v3 score (None: unscored) and its vector ("": none)
    Column("cvss_v3", Float(), nullable=True),
    Column("cvss_vector", String(), nullable=False, server_default=""),
)
_CHUNK = 400  # (vulnerability, package) pairs per statement
_MAX_REPOSITORIES = 2000  # more in one statement: filtered in Python only
BACKFILL_BATCH = 500  # contents decoded per step of the migration

# One counting image's occurrence of a finding: (digest, installed version, fix version,
# ecosystem, CVSS v3 score or None, its vector, the image's open tags)
Carrier = tuple[str, str, str, str, float | None, str, tuple[str, ...]]


def write(conn: Connection, content_id: int, occurrences: Sequence[Occurrence]) -> None:
    """The rows of a content just stored."""
    q.bulk_insert(conn, content_finding, [
        {"content_id": content_id, "vulnerability": o.id, "package": o.package,
         "version": o.version, "fix_version": o.fix_version, "ecosystem": o.ecosystem,
         "cvss_v3": o.cvss_v3, "cvss_vector": o.cvss_vector}
        for o in occurrences])


def backfill(conn: Connection) -> int:
    """Rows for every stored content (the migration that adds the table); contents read a
    batch at a time. The number of contents done."""
    c = t.report_content.c
    done, last = 0, 0
    while True:
        rows = conn.execute(select(c.id, c.occurrences).where(c.id > last).order_by(c.id)
                            .limit(BACKFILL_BATCH)).all()
        if not rows:
            return done
        values: list[dict[str, Any]] = []
        for content_id, blob in rows:
            values.extend({"content_id": content_id, "vulnerability": r[0], "package": r[1],
                           "version": r[2], "fix_version": r[3],
                           "ecosystem": r[8] if len(r) > 8 else "", "cvss_v3": r[6],
                           # a content's vector is not in its blob: known from now on
                           "cvss_vector": ""} for r in unpack_rows(blob))
        q.bulk_insert(conn, content_finding, values)
        done += len(rows)
        last = rows[-1][0]


_a, _o = t.artifact.c, content_finding.c
# What every carrier read returns, per occurrence: (repository id, vulnerability, package,
# artifact id, digest, version, fix version, ecosystem, CVSS v3 score, vector)
_CARRIER = (_a.repository_id, _o.vulnerability, _o.package, _a.id, _a.digest, _o.version,
            _o.fix_version, _o.ecosystem, _o.cvss_v3, _o.cvss_vector)


def _carrier_statement(by_repository: bool) -> Select[Any]:
    # Separate INs (not a row-value IN), and the repository only as a filter (searched by,
    # SQLite drives the join from the artifacts and scans content_finding for each): both
    # SQLite and PostgreSQL search ix_content_finding_key, then ix_artifact_content; what the
    # product of the INs lets through is dropped by the caller. Expanding parameters keep one
    # compiled statement for every chunk.
    stmt = (select(*_CARRIER)
            .select_from(content_finding)
            .join(t.artifact, _a.content_id == _o.content_id)
            .where(_o.vulnerability.in_(bindparam("vulnerabilities", expanding=True)),
                   _o.package.in_(bindparam("packages", expanding=True)),
                   _a.counting.is_(True)))
    if by_repository:  # ``+ 0``: filter on the repository, never search by it (see above)
        stmt = stmt.where((_a.repository_id + 0).in_(bindparam("repositories", expanding=True)))
    return stmt


_BY_PAIR = _carrier_statement(by_repository=False)
_BY_PAIR_IN_REPOSITORIES = _carrier_statement(by_repository=True)


def in_repositories(*columns: Any) -> Select[Any]:
    """``columns`` of every occurrence the counting images of some repositories
    (``repositories``, expanding) carry, from the artifacts through
    ``ix_content_finding_content``: what a few repositories' images report costs their reports,
    while a (vulnerability, package) of a large registry sits in thousands of contents, which
    the statements above read for each pair."""
    a = t.artifact.c
    return (select(*columns).select_from(t.artifact)
            .join(content_finding, content_finding.c.content_id == a.content_id)
            .where(a.counting.is_(True),
                   a.repository_id.in_(bindparam("repositories", expanding=True))))


_IN_REPOSITORIES = in_repositories(*_CARRIER)
_FEW_REPOSITORIES = 20  # at most this many: read from their images
# One finding's carriers, for a few findings wherever they are (``each``), where a pair's
# thousands of contents, or every occurrence of a few repositories' images, cost more: its
# repository's counting images, each content searched by (vulnerability, package, content)
# in ix_content_finding_key. ``+ 0``: never driven from the pair's contents (what SQLite
# would choose otherwise).
_OF_FINDING = (select(*_CARRIER)
               .select_from(t.artifact)
               .join(content_finding, and_(content_finding.c.content_id == _a.content_id + 0,
                                           _o.vulnerability == bindparam("vulnerability"),
                                           _o.package == bindparam("package")))
               .where(_a.repository_id == bindparam("repository"), _a.counting.is_(True)))
_OPEN_TAGS = select(t.tag.c.artifact_id, t.tag.c.name).where(
    t.tag.c.until.is_(None), t.tag.c.artifact_id.in_(bindparam("artifacts", expanding=True)))


def carried(conn: Connection, wanted: set[tuple[int, str, str]], *, each: bool = False
            ) -> dict[tuple[int, str, str], list[Carrier]]:
    """(repository, vulnerability, package) → its occurrences in the counting images of that
    repository, for each ``wanted`` finding (none: no image carries it now); ``each``: read
    finding by finding (a few, wherever they are). The reads are answered from covering
    indexes (migration 19); a row is kept as the driver returns it."""
    if not wanted:
        return {}
    pairs = sorted({(v, p) for _, v, p in wanted})
    repos = sorted({r for r, _, _ in wanted})
    stmt = _BY_PAIR_IN_REPOSITORIES if len(repos) <= _MAX_REPOSITORIES else _BY_PAIR
    reads: list[tuple[Select[Any], dict[str, Any]]] = []
    if each:  # a few repositories read whole cost every occurrence of their images
        rows = driver_rows_each(conn, _OF_FINDING, [
            {"repository": r, "vulnerability": v, "package": p} for r, v, p in sorted(wanted)])
    elif len(repos) <= _FEW_REPOSITORIES:
        reads = [(_IN_REPOSITORIES, {"repositories": repos})]
    else:
        reads = [(stmt, {"vulnerabilities": sorted({v for v, _ in part}),
                         "packages": sorted({p for _, p in part}),
                         **({"repositories": repos} if stmt is _BY_PAIR_IN_REPOSITORIES else {})})
                 for part in (pairs[i:i + _CHUNK] for i in range(0, len(pairs), _CHUNK))]
    if reads:
        rows = (row for statement, params in reads for row in driver_rows(conn, statement, params))
    return _grouped(conn, rows, wanted)


def of_repositories(conn: Connection, repositories: Sequence[int]
                    ) -> dict[tuple[int, str, str], list[Carrier]]:
    """Every finding the counting images of ``repositories`` carry now, with its carriers as
    ``carried`` returns them (read from the images, ``in_repositories``)."""
    if not repositories:
        return {}
    return _grouped(conn, driver_rows(conn, _IN_REPOSITORIES,
                                      {"repositories": sorted(repositories)}), None)


def _grouped(conn: Connection, rows: Iterable[tuple[Any, ...]],
             wanted: set[tuple[int, str, str]] | None
             ) -> dict[tuple[int, str, str], list[Carrier]]:
    """``rows`` (``_CARRIER``'s columns) by finding, those of ``wanted`` (None: every one),
    each carrier with its image's open tags."""
    found: dict[tuple[int, str, str], list[tuple[Any, ...]]] = {}
    arts: set[int] = set()
    for row in rows:
        key = row[:3]
        if wanted is None or key in wanted:  # the product of the INs lets more through
            slot = found.get(key)
            if slot is None:
                found[key] = [row]
            else:
                slot.append(row)
            arts.add(row[3])
    tags: dict[int, list[str]] = {}
    ordered = sorted(arts)
    for start in range(0, len(ordered), 900):
        for art_id, name in driver_rows(conn, _OPEN_TAGS,
                                        {"artifacts": ordered[start:start + 900]}):
            tags.setdefault(art_id, []).append(name)
    none: tuple[str, ...] = ()
    frozen = {art_id: tuple(names) for art_id, names in tags.items()}
    return {key: [(r[4], r[5], r[6], r[7], r[8], r[9] or "", frozen.get(r[3], none))
                  for r in occurrences] for key, occurrences in found.items()}


@dataclass(frozen=True, slots=True)
class Summary:
    """What a listing shows of a finding's carriers: the lowest fix they list ("": none),
    the installed versions each with the digests carrying it (by version, digests sorted),
    every digest and open tag (sorted), the first ecosystem named ("": none), and the
    highest CVSS v3 score with its vector."""

    fix: str
    carriers: tuple[tuple[str, tuple[str, ...]], ...]
    digests: tuple[str, ...]
    tags: tuple[str, ...]
    ecosystem: str
    cvss_v3: float | None
    cvss_vector: str


def summarise(seen: Sequence[Carrier]) -> Summary:
    """The summary of a finding's carriers (``seen``, at least one)."""
    fixes: set[str] = set()
    tags: set[str] = set()
    ecosystems: set[str] = set()
    scored: set[tuple[float, str]] = set()
    carried: dict[str, set[str]] = {}
    for digest, version, fix, ecosystem, score, vector, names in seen:
        holders = carried.get(version)
        if holders is None:
            carried[version] = {digest}
        else:
            holders.add(digest)
        if fix:
            fixes.add(fix)
        if ecosystem:
            ecosystems.add(ecosystem)
        if score is not None:
            scored.add((float(score), vector))
        if names:
            tags.update(names)
    versions = sorted(carried)
    cvss_v3, cvss_vector = _cvss(scored)
    return Summary(min(fixes) if fixes else "",
                   tuple((v, tuple(sorted(carried[v]))) for v in versions),
                   tuple(sorted({c[0] for c in seen})), tuple(sorted(tags)),
                   min(ecosystems) if ecosystems else "", cvss_v3, cvss_vector)


def _cvss(scored: set[tuple[float, str]]) -> tuple[float | None, str]:
    """The highest score of the images carrying it, and its vector."""
    if not scored:
        return None, ""
    return max(scored, key=lambda sv: (sv[0], bool(sv[1]), sv[1]))
