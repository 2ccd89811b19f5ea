"""Intel feeds in the history database: the last good copy of each feed, and the events a feed
change writes onto open findings. Plain functions over a ``Connection`` (one transaction is the
caller's ``engine.begin()``)."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from daemon.intel.changes import IntelEvent, OpenHit
from daemon.model import ExploitInfo, Severity
from daemon.store import tables as t
from daemon.store.base import driver_rows
from daemon.store.statements import INSERT_EVENT


@dataclass(frozen=True, slots=True)
class FeedRow:
    name: str
    source: str
    version: str
    etag: str
    last_modified: str
    body: bytes | None  # uncompressed; None before the first good fetch
    fetched_at: datetime | None
    checked_at: datetime
    last_error: str


def load(conn: Connection, name: str, *, body: bool = True) -> FeedRow | None:
    c = t.intel_feed.c
    cols = [c.name, c.source, c.version, c.etag, c.last_modified, c.fetched_at, c.checked_at,
            c.last_error] + ([c.body] if body else [])
    row = conn.execute(select(*cols).where(c.name == name)).first()
    if row is None:
        return None
    raw = row.body if body else None
    return FeedRow(row.name, row.source, row.version, row.etag, row.last_modified,
                   gzip.decompress(raw) if raw else None, row.fetched_at, row.checked_at,
                   row.last_error)


def all_feeds(conn: Connection) -> list[FeedRow]:
    names = conn.execute(select(t.intel_feed.c.name).order_by(t.intel_feed.c.name)).scalars()
    return [r for n in list(names) if (r := load(conn, n, body=False)) is not None]


def _upsert(conn: Connection, name: str, values: dict[str, Any]) -> None:
    """Every write of a feed's row: fenced by the ``feeds`` lease where one is worked under
    (several daemons: only its holder keeps feeds), in the caller's transaction."""
    from daemon.store.leases import fence_current

    fence_current(conn)
    c = t.intel_feed.c
    if conn.execute(select(c.name).where(c.name == name)).first() is None:
        base = {"source": "", "version": "", "etag": "", "last_modified": "", "last_error": ""}
        conn.execute(t.intel_feed.insert().values(name=name, **{**base, **values}))
    else:
        conn.execute(t.intel_feed.update().where(c.name == name).values(**values))


def save_good(conn: Connection, name: str, *, source: str, version: str, etag: str,
              last_modified: str, body: bytes, now: datetime) -> None:
    """A fetched, validated copy: it becomes the one in force."""
    _upsert(conn, name, {"source": source, "version": version, "etag": etag,
                         "last_modified": last_modified,
                         "body": gzip.compress(body, compresslevel=6),
                         "fetched_at": now, "checked_at": now, "last_error": ""})


def save_unchanged(conn: Connection, name: str, now: datetime) -> None:
    """A 304: the copy in force is current as of ``now``."""
    _upsert(conn, name, {"fetched_at": now, "checked_at": now, "last_error": ""})


def save_failure(conn: Connection, name: str, source: str, error: str, now: datetime) -> None:
    """A failed fetch or parse: recorded, the good copy left as it is."""
    _upsert(conn, name, {"source": source, "checked_at": now, "last_error": error[:500]})


def open_findings_for(conn: Connection, cves: Iterable[str]) -> list[OpenHit]:
    """The open findings (ignored ones included) of these CVE ids, in any registry."""
    wanted = sorted(set(cves))
    if not wanted:
        return []
    f = t.finding.c
    out: list[OpenHit] = []
    for i in range(0, len(wanted), 500):  # bound the IN list (SQLite's variable limit)
        query = (select(f.id, f.repository_id, f.vulnerability, f.package, f.severity,
                        f.fix_version, f.installed_versions, f.ignored)
                 .where(f.resolved_at.is_(None), f.vulnerability.in_(wanted[i:i + 500]))
                 .order_by(f.repository_id, f.vulnerability, f.package))
        out.extend(OpenHit(r.id, r.repository_id, r.vulnerability, r.package,
                           Severity(r.severity), r.fix_version, r.installed_versions,
                           bool(r.ignored)) for r in conn.execute(query))
    return out


def carrier_digests(conn: Connection, repository_id: int, vulnerability: str) -> tuple[str, ...]:
    """The counting artifacts of the repository (digests) whose report carries the CVE."""
    from daemon.store import content

    a, rc = t.artifact.c, t.report_content.c
    rows = conn.execute(select(a.digest, rc.occurrences).join(
        t.report_content, rc.id == a.content_id).where(
        a.repository_id == repository_id, a.counting.is_(True)))
    return tuple(sorted(digest for digest, blob in rows
                        if any(v == vulnerability for v, _ in content.unpack_keys(blob))))


def record_events(conn: Connection, events: Sequence[IntelEvent], now: datetime) -> int:
    """Write the events as ``finding_event`` rows (no scan: nothing was rescanned)."""
    if not events:
        return 0
    conn.execute(INSERT_EVENT, [{
        "finding_id": e.hit.finding_id, "repository_id": e.hit.repository_id, "scan_id": None,
        "kind": e.kind.value, "reason": e.reason.value, "at": now,
        "severity": int(e.hit.severity), "previous_severity": None,
        "installed_version": e.hit.installed_versions.split(",")[0],
        "previous_version": e.detail, "fix_version": e.hit.fix_version,
        "digests": ",".join(e.digests), "count": 1, "cvss_v3": None, "cvss_vector": "",
    } for e in events])
    return len(events)


def open_cves(conn: Connection) -> set[str]:
    """The distinct vulnerability ids of open findings."""
    f = t.finding.c
    return set(conn.execute(select(f.vulnerability).where(f.resolved_at.is_(None))
                            .distinct()).scalars())


def replace_kev(conn: Connection, catalog: Any) -> None:
    """The rows of ``catalog`` (a ``kev.KevCatalog``) become the KEV in force."""
    conn.execute(t.intel_kev.delete())
    rows = [{"cve": e.cve, "name": e.name, "date_added": e.date_added, "due_date": e.due_date,
             "required_action": e.required_action, "ransomware": e.ransomware}
            for e in catalog.entries.values()]
    if rows:
        conn.execute(t.intel_kev.insert(), rows)


def replace_epss(conn: Connection, scores: Any) -> None:
    """The rows of ``scores`` (an ``epss.EpssScores``) become the EPSS in force."""
    conn.execute(t.intel_epss.delete())
    e, p = scores.epss, scores.percentile
    rows = [{"cve": cve, "epss": e[i], "percentile": p[i]} for cve, i in scores.index.items()]
    for start in range(0, len(rows), 20_000):
        conn.execute(t.intel_epss.insert(), rows[start:start + 20_000])


def exploit_info(conn: Connection, cves: Iterable[str]) -> dict[str, ExploitInfo]:
    """What KEV and EPSS (the copies in force) say of each of ``cves`` that either lists."""
    wanted = sorted(set(cves))
    kev: dict[str, Any] = {}
    scores: dict[str, tuple[float, float]] = {}
    k, s = t.intel_kev.c, t.intel_epss.c
    for i in range(0, len(wanted), 500):
        part = wanted[i:i + 500]
        kev.update((r.cve, r) for r in conn.execute(select(t.intel_kev).where(k.cve.in_(part))))
        scores.update((r.cve, (r.epss, r.percentile))
                      for r in conn.execute(select(t.intel_epss).where(s.cve.in_(part))))
    from daemon.intel.kev import exploit_info as info

    return {cve: info(kev.get(cve), scores.get(cve)) for cve in set(kev) | set(scores)}


def repositories_of(conn: Connection, digests: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """digest → the (registry, project/repository) pairs whose artifacts have it."""
    wanted = sorted(set(digests))
    out: dict[str, list[tuple[str, str]]] = {}
    a, r, g = t.artifact.c, t.repository.c, t.registry.c
    for i in range(0, len(wanted), 500):
        query = (select(a.digest, g.name, r.project, r.name.label("repo"))
                 .join(t.repository, r.id == a.repository_id)
                 .join(t.registry, g.id == r.registry_id)
                 .where(a.digest.in_(wanted[i:i + 500])))
        for row in conn.execute(query):
            out.setdefault(row.digest, []).append((row.name, f"{row.project}/{row.repo}"))
    return out


class EpssScores(Mapping[str, tuple[float, float]]):
    """cve → (score, percentile) of the EPSS copy in force, read as a listing meets each CVE
    and kept: the feed has 300,000 rows, and a first page meets 25 CVEs. Past ``BULK``
    distinct CVEs (a whole listing) the scores of every open finding's CVE are read in one
    statement instead."""

    BULK = 200

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known: dict[str, tuple[float, float] | None] = {}
        self._whole = False
        with engine.connect() as conn:
            self._any = conn.execute(select(t.intel_epss.c.cve).limit(1)).first() is not None

    def get(self, cve: str, default: Any = None) -> Any:
        if not self._any:
            return default
        if cve not in self._known:
            if self._whole:
                return default
            self._read(cve)
        found = self._known.get(cve)
        return default if found is None else found

    def _read(self, cve: str) -> None:
        s, f = t.intel_epss.c, t.finding.c
        with self._engine.connect() as conn:
            if len(self._known) < self.BULK:
                row = conn.execute(select(s.epss, s.percentile).where(s.cve == cve)).first()
                self._known[cve] = None if row is None else (float(row[0]), float(row[1]))
                return
            open_ids = select(f.vulnerability).where(f.resolved_at.is_(None))
            self._known.update((c, (float(e), float(p))) for c, e, p in driver_rows(
                conn, select(s.cve, s.epss, s.percentile).where(s.cve.in_(open_ids))))
            self._whole = True

    def __getitem__(self, cve: str) -> tuple[float, float]:
        found = self.get(cve)
        if found is None:
            raise KeyError(cve)
        return found  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        """The CVEs read so far that EPSS scores."""
        return iter([c for c, v in self._known.items() if v is not None])

    def __len__(self) -> int:
        return sum(1 for v in self._known.values() if v is not None)

    def __bool__(self) -> bool:
        return self._any


@dataclass(frozen=True, slots=True)
class Tables:
    """The KEV copy in force, whole, and the EPSS copy read as a listing meets each CVE."""

    kev: dict[str, tuple[Any, Any]]  # cve → (date_added, due_date)
    epss: Mapping[str, tuple[float, float]]  # cve → (score, percentile)

    def __bool__(self) -> bool:
        return bool(self.kev or self.epss)


def kev_listing(conn: Connection) -> tuple[frozenset[str], str]:
    """(the CVEs of the KEV copy in force, its version as "KEV 2025.08.25"); empty without one."""
    cves = frozenset(conn.execute(select(t.intel_kev.c.cve)).scalars())
    if not cves:
        return cves, ""
    c = t.intel_feed.c
    version = conn.execute(select(c.version).where(c.name == "kev")).scalar()
    return cves, f"KEV {version}" if version else "KEV"


def kev_dates(conn: Connection) -> dict[str, tuple[Any, Any]]:
    """cve → (date_added, due_date) of the KEV copy in force (empty without one)."""
    k = t.intel_kev.c
    return {r.cve: (r.date_added, r.due_date)
            for r in conn.execute(select(k.cve, k.date_added, k.due_date))}


def tables(engine: Engine) -> Tables:
    """The KEV copy whole (about 1,500 rows) and the EPSS copy as a listing meets its CVEs."""
    with engine.connect() as conn:
        kev = kev_dates(conn)
    return Tables(kev, EpssScores(engine))
