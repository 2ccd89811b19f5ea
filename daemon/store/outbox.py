"""The alert outbox, route cursors and the notification log (SQLAlchemy Core).

``claim_and_queue`` is the one transaction that makes alerting lossless: it reads the change
events and failed scans past each due route's cursor, lets the caller turn them into outbox rows,
inserts those rows and moves the cursors, all before one commit. ``mark_sent`` writes the
notification log and marks the row sent in one transaction, only after a successful send.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection, Engine

from daemon.alerts.dedup import Log, Told
from daemon.diff import is_first_sight
from daemon.model import ChangeEvent, ChangeKind, ExploitInfo, FindingKey, Reason, Severity
from daemon.store import intel
from daemon.store import tables as t
from daemon.store.base import driver_rows
from daemon.store.leases import fence_current  # ha: lease fencing (issue 19)
from daemon.store.tables import as_utc


class HasEngine(Protocol):
    engine: Engine


@dataclass(frozen=True)
class Cursor:
    route: str
    last_event_id: int
    last_scan_id: int
    last_digest_at: datetime | None
    known: bool = True  # False: the route has no row yet


@dataclass(frozen=True)
class FailedScan:
    id: int
    registry: str
    project: str
    repository: str
    digest: str
    status: str
    error: str
    at: datetime | None


@dataclass(frozen=True)
class FirstSightFacts:
    """What grouping needs beyond the first-sight summary events themselves.

    ``counts``: (registry, project, repository) → findings per severity first seen with the
    summaries read (the event stores only the count and the highest severity).
    ``known``: registry → every (project, repository) that history holds a finding for, to tell
    a registry's very first run (every such repository is a first sight) from a new repository.
    """

    counts: dict[tuple[str, str, str], dict[Severity, int]]
    known: dict[str, frozenset[tuple[str, str]]]


@dataclass
class Batch:
    """What a claim pass read; the caller fills ``rows`` and ``cursors`` to write."""

    cursors: dict[str, Cursor]
    events: list[tuple[int, ChangeEvent]]
    failed_scans: list[FailedScan]
    max_event_id: int
    max_scan_id: int
    first_sight: FirstSightFacts = field(default_factory=lambda: FirstSightFacts({}, {}))
    exploit: dict[str, ExploitInfo] = field(default_factory=dict)  # KEV/EPSS of their CVEs
    rows: list[dict[str, Any]] = field(default_factory=list)
    advance: dict[str, Cursor] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    message_id: str
    receiver: str
    route: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    dead_at: datetime | None
    last_error: str

    @property
    def status(self) -> str:
        return "sent" if self.sent_at else "dead" if self.dead_at else "pending"


def _cursors(conn: Connection) -> dict[str, Cursor]:
    c = t.alert_cursor.c
    return {row.route: Cursor(row.route, row.last_event_id, row.last_scan_id, row.last_digest_at)
            for row in conn.execute(select(c.route, c.last_event_id, c.last_scan_id,
                                           c.last_digest_at))}


_SEVERITY = {int(s): s for s in Severity}
# the stored values' members by dictionary (an Enum call per event costs more than the event)
_KIND = {k.value: k for k in ChangeKind}
_REASON = {r.value: r for r in Reason}


def _events_after(conn: Connection, after: int, upto: int
                  ) -> tuple[list[tuple[int, ChangeEvent]], FirstSightFacts]:
    """Change events in (after, upto], first-sight summaries included (they have no finding)."""
    e, f, r, g = t.finding_event.c, t.finding.c, t.repository.c, t.registry.c
    query = (select(e.id, e.kind, e.reason, e.at, e.severity, e.previous_severity,
                    e.installed_version, e.fix_version, e.digests, e.repository_id,
                    e.count.label("findings"), e.cvss_v3, e.cvss_vector,
                    f.vulnerability, f.package, f.ignored, r.project, r.name,
                    g.name.label("registry"))
             .outerjoin(t.finding, f.id == e.finding_id)  # a first-sight summary has none
             .join(t.repository, r.id == e.repository_id)
             .join(t.registry, g.id == r.registry_id)
             .where(e.id > after, e.id <= upto).order_by(e.id))
    rows = list(driver_rows(conn, query))
    # A summary names no finding and lists no image: tags only for the events that do.
    tags = _current_tags(conn, {(row[9], d) for row in rows if row[13] is not None
                                for d in row[8].split(",") if d})
    out = []
    summaries: dict[int, tuple[str, str, str]] = {}  # repository id → its scope
    severity = _SEVERITY
    # A first sight's summaries (one per image) share a few hundred times and one key per
    # repository: each parsed or built once (51,754 summaries on a registry of 100,000 images).
    times: dict[Any, datetime] = {}
    scopes: dict[int, FindingKey] = {}
    for (event_id, kind, reason, stored_at, level, previous, installed, fix, digest_list,
         repository_id, findings, cvss_v3, cvss_vector, vulnerability, package, ignored, project,
         name, registry) in rows:
        digests = tuple(d for d in digest_list.split(",") if d)
        at = times.get(stored_at)
        if at is None:
            at = times[stored_at] = as_utc(stored_at)
        if vulnerability is None:
            key = scopes.get(repository_id)
            if key is None:
                key = scopes[repository_id] = FindingKey(registry, project, name, "", "")
        else:
            key = FindingKey(registry, project, name, vulnerability, package or "")
        event = ChangeEvent(
            kind=_KIND[kind], reason=_REASON[reason], finding=key,
            severity=severity[level], at=at, installed_version=installed, fix_version=fix,
            previous_severity=None if previous is None else severity[previous],
            digests=digests, ignored=bool(ignored),
            tags=tuple(sorted({n for d in digests for n in tags.get((repository_id, d), ())}))
            if vulnerability is not None else (),
            count=int(findings or 1), cvss_v3=cvss_v3, cvss_vector=cvss_vector,
        )
        if is_first_sight(event):
            summaries[repository_id] = (registry, project, name)
        out.append((event_id, event))
    return out, _first_sight_facts(conn, summaries, after, upto)


def _first_sight_facts(conn: Connection, summaries: dict[int, tuple[str, str, str]],
                       after: int, upto: int) -> FirstSightFacts:
    """Per repository with first-sight summaries in (after, upto], its findings first seen
    with one of them counted by severity, and the repositories history holds findings for."""
    if not summaries:
        return FirstSightFacts({}, {})
    e, f, r, g = t.finding_event.c, t.finding.c, t.repository.c, t.registry.c
    counts: dict[tuple[str, str, str], dict[Severity, int]] = {}
    # The findings first seen at the time of a summary of their repository (an event of reason
    # first_sight without a finding: ``diff.is_first_sight`` in SQL), each (repository, time)
    # searched in ix_finding_first_seen and counted in SQL: not one group per time returned
    # (99,000 at 100,000 images, one summary per image), nor later findings.
    stamps = (select(e.repository_id, e.at)
              .where(e.id > after, e.id <= upto, e.finding_id.is_(None),
                     e.reason == Reason.FIRST_SIGHT.value).distinct().subquery())
    query = (select(f.repository_id, f.severity, func.count())
             .select_from(t.finding)
             .join(stamps, and_(stamps.c.repository_id == f.repository_id,
                                stamps.c.at == f.first_seen))
             .group_by(f.repository_id, f.severity))
    for rid, severity, n in driver_rows(conn, query):
        scope = summaries.get(rid)
        if scope is not None:
            counts.setdefault(scope, {})[_SEVERITY[severity]] = int(n)
    registries = sorted({scope[0] for scope in summaries.values()})
    known: dict[str, set[tuple[str, str]]] = {name: set() for name in registries}
    query = (select(g.name, r.project, r.name)  # each repository once, through ix_finding_open
             .select_from(t.repository).join(t.registry, g.id == r.registry_id)
             .where(g.name.in_(registries),
                    select(f.id).where(f.repository_id == r.id).exists()))
    for registry, project, name in conn.execute(query):
        known[registry].add((project, name))
    return FirstSightFacts(counts, {k: frozenset(v) for k, v in known.items()})


def _current_tags(conn: Connection, wanted: set[tuple[int, str]]
                  ) -> dict[tuple[int, str], list[str]]:
    """The tags that point at each (repository id, digest) of ``wanted`` now: the open tags of
    those repositories, read through ``ix_tag_open``. (No index leads with a tag's digest: a
    search by digest read every tag for each 500 digests, 16 s of a first sight's 95,000
    summaries on a registry of 100,000 images.)"""
    if not wanted:
        return {}
    tg = t.tag.c
    out: dict[tuple[int, str], list[str]] = {}
    repositories = sorted({repository for repository, _ in wanted})
    for start in range(0, len(repositories), 500):  # under SQLite's bound-parameter limit
        query = select(tg.repository_id, tg.digest, tg.name).where(
            tg.repository_id.in_(repositories[start:start + 500]), tg.until.is_(None))
        for repository, digest, name in conn.execute(query):
            if (repository, digest) in wanted:
                out.setdefault((repository, digest), []).append(name)
    return out


def _failed_after(conn: Connection, after: int, upto: int) -> list[FailedScan]:
    s, a, r, g = t.scan.c, t.artifact.c, t.repository.c, t.registry.c
    query = (select(s.id, s.status, s.error, s.log_excerpt, s.finished_at, a.digest, r.project,
                    r.name, g.name.label("registry"))
             .join(t.artifact, a.id == s.artifact_id).join(t.repository, r.id == a.repository_id)
             .join(t.registry, g.id == r.registry_id)
             .where(s.id > after, s.id <= upto, s.status.in_(("Error", "Stopped")))
             .order_by(s.id))
    return [FailedScan(row.id, row.registry, row.project, row.name, row.digest, row.status,
                       row.log_excerpt or row.error, row.finished_at)
            for row in conn.execute(query)]


def starting_cursor(route: str, database_has_cursors: bool, max_event: int,
                    max_scan: int) -> Cursor:
    """Where a route without a cursor starts: at the newest event and scan (a route added later
    does not replay history), except in a database where no route has a cursor yet (the first
    run), where it starts at the beginning. ``claim_and_queue`` and ``peek`` both use it."""
    if database_has_cursors:
        return Cursor(route, max_event, max_scan, None, known=False)
    return Cursor(route, 0, 0, None, known=False)


def _add_starting_cursors(cursors: dict[str, Cursor], routes: Sequence[str], max_event: int,
                          max_scan: int, legacy: dict[str, str] | None = None) -> None:
    """Give every route a cursor; a route whose identity is new but whose positional key
    (``legacy``: identity → ``route<N>`` of older versions) has a cursor starts from that one."""
    has_cursors = bool(cursors)
    legacy = legacy or {}
    for route in routes:
        if route in cursors:
            continue
        old = cursors.get(legacy.get(route, ""))
        if old is not None and old.route not in routes:
            cursors[route] = Cursor(route, old.last_event_id, old.last_scan_id,
                                    old.last_digest_at, known=False)
        else:
            cursors[route] = starting_cursor(route, has_cursors, max_event, max_scan)


def _read_batch(conn: Connection, cursors: dict[str, Cursor], routes: Sequence[str],
                max_event: int, max_scan: int) -> Batch:
    low_e = min((cursors[r].last_event_id for r in routes), default=max_event)
    low_s = min((cursors[r].last_scan_id for r in routes), default=max_scan)
    events, first_sight = _events_after(conn, low_e, max_event)
    exploit = intel.exploit_info(conn, {e.finding.vulnerability for _, e in events
                                        if e.finding.vulnerability})
    return Batch(cursors, events, _failed_after(conn, low_s, max_scan), max_event, max_scan,
                 first_sight, exploit)


def claim_and_queue(store: HasEngine, routes: Sequence[str],
                    build: Callable[[Batch], None], now: datetime,
                    legacy: dict[str, str] | None = None) -> list[str]:
    """Read past the cursors of ``routes``, let ``build`` fill the batch, write it, commit.

    A route without a cursor starts where ``starting_cursor`` says (as ``peek`` does), or, once,
    from the cursor its ``legacy`` positional key had (that row is then renamed). Returns the
    message ids inserted.
    """
    with store.engine.begin() as conn:
        fence_current(conn, serialize="alert_cursor")  # ha: lease fencing (issue 19)
        cursors = _cursors(conn)
        max_event = int(conn.execute(select(func.max(t.finding_event.c.id))).scalar() or 0)
        max_scan = int(conn.execute(select(func.max(t.scan.c.id))).scalar() or 0)
        _add_starting_cursors(cursors, routes, max_event, max_scan, legacy)
        batch = _read_batch(conn, cursors, routes, max_event, max_scan)
        build(batch)
        adopted = [old for new, old in (legacy or {}).items()
                   if not cursors[new].known and old in cursors and old not in routes]
        if adopted:
            conn.execute(t.alert_cursor.delete().where(t.alert_cursor.c.route.in_(adopted)))
        if batch.rows:
            conn.execute(t.outbox.insert(), [{**row, "created_at": now} for row in batch.rows])
        for route, cur in batch.advance.items():
            values = {"last_event_id": cur.last_event_id, "last_scan_id": cur.last_scan_id,
                      "last_digest_at": cur.last_digest_at, "updated_at": now}
            if cursors[route].known:
                conn.execute(t.alert_cursor.update().where(t.alert_cursor.c.route == route)
                             .values(**values))
            else:
                conn.execute(t.alert_cursor.insert().values(route=route, **values))
        _pause_hook("before_commit")
    _pause_hook("after_queue")  # committed, not yet sent
    return [row["message_id"] for row in batch.rows]


def _pause_hook(point: str) -> None:
    """Test hook: ``SCANWATCH_TEST_CRASH_AT=<point>`` kills the process there (fault tests)."""
    import os
    import signal

    if os.environ.get("SCANWATCH_TEST_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def last_notified(store: HasEngine, receivers: Iterable[str]) -> Log:
    """(receiver, finding) → what it was told (kind, value, latest send), from the log and
    from messages still pending (``alerts/dedup.py`` decides with it)."""
    n, f, r, g = t.notification_log.c, t.finding.c, t.repository.c, t.registry.c
    names = sorted(set(receivers))
    out: dict[tuple[str, FindingKey], list[Told]] = {}
    with store.engine.connect() as conn:
        query = (select(n.receiver, n.kind, n.value, func.max(n.sent_at), f.vulnerability,
                        f.package, r.project, r.name, g.name)
                 .join(t.finding, f.id == n.finding_id).join(t.repository, r.id == f.repository_id)
                 .join(t.registry, g.id == r.registry_id).where(n.receiver.in_(names))
                 .group_by(n.receiver, n.kind, n.value, f.vulnerability, f.package, r.project,
                           r.name, g.name))
        for rec, kind, value, at, vuln, pkg, project, repo, reg in conn.execute(query):
            key = FindingKey(reg, project, repo, vuln, pkg)
            out.setdefault((rec, key), []).append(Told(kind, value, at))
        o = t.outbox.c
        pending = conn.execute(select(o.receiver, o.payloads, o.created_at).where(
            o.sent_at.is_(None), o.dead_at.is_(None), o.receiver.in_(names)))
        for rec, payloads, created in pending:
            for found in json.loads(payloads).get("findings", []):
                reg, project, repo, vuln, pkg, kind, *value = found
                key = FindingKey(reg, project, repo, vuln, pkg)
                out.setdefault((rec, key), []).append(
                    Told(kind, value[0] if value else "", created))
    return out


def _row(row: Any) -> OutboxRow:
    return OutboxRow(row.id, row.message_id, row.receiver, row.route, json.loads(row.payloads),
                     row.created_at, row.attempts, row.next_attempt_at, row.sent_at, row.dead_at,
                     row.last_error)


def due(store: HasEngine, now: datetime, limit: int = 100) -> list[OutboxRow]:
    """Pending rows whose next attempt is due, oldest first."""
    o = t.outbox.c
    query = (select(t.outbox).where(o.sent_at.is_(None), o.dead_at.is_(None))
             .where((o.next_attempt_at.is_(None)) | (o.next_attempt_at <= now))
             .order_by(o.id).limit(limit))
    with store.engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]


def listing(store: HasEngine, status: str | None = None, limit: int = 200) -> list[OutboxRow]:
    """Rows for ``scanwatch alerts outbox``, newest first; status pending, sent or dead."""
    o = t.outbox.c
    query = select(t.outbox).order_by(o.id.desc()).limit(limit)
    if status == "pending":
        query = query.where(o.sent_at.is_(None), o.dead_at.is_(None))
    elif status == "sent":
        query = query.where(o.sent_at.is_not(None))
    elif status == "dead":
        query = query.where(o.dead_at.is_not(None))
    with store.engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]


def mark_sent(store: HasEngine, row: OutboxRow, now: datetime) -> None:
    """Log every finding the message reported, and mark it sent: one transaction."""
    f, r, g = t.finding.c, t.repository.c, t.registry.c
    with store.engine.begin() as conn:
        fence_current(conn)  # ha: lease fencing (issue 19)
        log_rows = []
        for reg, project, repo, vuln, pkg, kind, *value in row.payload.get("findings", []):
            found = conn.execute(select(f.id).join(t.repository, r.id == f.repository_id)
                                 .join(t.registry, g.id == r.registry_id)
                                 .where(g.name == reg, r.project == project, r.name == repo,
                                        f.vulnerability == vuln, f.package == pkg)).first()
            if found is not None:
                log_rows.append({"receiver": row.receiver, "finding_id": found[0], "kind": kind,
                                 "value": value[0] if value else "", "sent_at": now,
                                 "message_id": row.message_id})
        if log_rows:
            conn.execute(t.notification_log.insert(), log_rows)
        conn.execute(t.outbox.update().where(t.outbox.c.id == row.id).values(
            sent_at=now, attempts=row.attempts + 1, last_error=""))


def mark_failed(store: HasEngine, row: OutboxRow, *, error: str, next_attempt_at: datetime | None,
                dead_at: datetime | None = None, attempted: bool = True) -> None:
    """Record a failure: retry at ``next_attempt_at``, or dead-letter at ``dead_at``.

    ``attempted`` is False when nothing was sent (a row dead-lettered for its age or its
    receiver): the attempt count stays what it was.
    """
    with store.engine.begin() as conn:
        fence_current(conn)  # ha: lease fencing (issue 19)
        conn.execute(t.outbox.update().where(t.outbox.c.id == row.id).values(
            attempts=row.attempts + (1 if attempted else 0), last_error=error[:500],
            next_attempt_at=next_attempt_at, dead_at=dead_at))


def peek(store: HasEngine, routes: Sequence[str], since: datetime | None = None,
         legacy: dict[str, str] | None = None) -> Batch:
    """What the next claim would read (writing nothing), for ``scanwatch alerts preview``.

    With ``since``, the events and failed scans recorded since then instead, whatever the
    cursors say.
    """
    with store.engine.connect() as conn:
        cursors = _cursors(conn)
        max_event = int(conn.execute(select(func.max(t.finding_event.c.id))).scalar() or 0)
        max_scan = int(conn.execute(select(func.max(t.scan.c.id))).scalar() or 0)
        if since is not None:
            e, s = t.finding_event.c, t.scan.c
            # ``id + 0``: a range of ix_event_at / ix_scan_time, not a walk of the primary key
            low_e = int(conn.execute(select(func.min(e.id + 0)).where(e.at >= since)).scalar()
                        or max_event + 1) - 1
            low_s = int(conn.execute(select(func.min(s.id + 0)).where(
                func.coalesce(s.finished_at, s.started_at) >= since)).scalar() or max_scan + 1) - 1
            cursors = {r: Cursor(r, low_e, low_s, None) for r in routes}
        _add_starting_cursors(cursors, routes, max_event, max_scan, legacy)
        return _read_batch(conn, cursors, routes, max_event, max_scan)


def _unsent_matching(conn: Connection, message_id: str) -> list[Any]:
    """Unsent rows whose message id starts with ``message_id`` (the listing shows a prefix)."""
    o = t.outbox.c
    return list(conn.execute(select(o.id, o.message_id).where(
        o.sent_at.is_(None), o.message_id.startswith(message_id, autoescape=True))))


def retry(store: HasEngine, now: datetime, *, message_id: str = "",
          dead: bool = False) -> list[str]:
    """Make unsent messages due now: the one ``message_id`` names (a unique prefix), or every
    dead-lettered one. Returns the matching ids; a prefix that matches several changes
    nothing."""
    o = t.outbox.c
    with store.engine.begin() as conn:
        if dead:
            found = list(conn.execute(select(o.id, o.message_id).where(
                o.sent_at.is_(None), o.dead_at.is_not(None))))
        else:
            found = _unsent_matching(conn, message_id)
            if len(found) != 1:
                return [r.message_id for r in found]
        conn.execute(t.outbox.update().where(o.id.in_([r.id for r in found])).values(
            dead_at=None, next_attempt_at=now))
        return [r.message_id for r in found]


def drop(store: HasEngine, message_id: str) -> list[str]:
    """Delete the one unsent message ``message_id`` names (a unique prefix); its findings stay
    unannounced, so a later run may announce them again. Returns the matching ids (deleted
    only when there is exactly one)."""
    with store.engine.begin() as conn:
        found = _unsent_matching(conn, message_id)
        if len(found) == 1:
            conn.execute(t.outbox.delete().where(t.outbox.c.id == found[0].id))
        return [r.message_id for r in found]


def hold_receiver(store: HasEngine, receiver: str, url_index: int, until: datetime) -> int:
    """Make every pending row for one URL of ``receiver`` wait until at least ``until`` (its
    ``Retry-After`` or backoff holds all its messages, not one); the number of rows held.
    Row ids end in ``.<url index>`` (``alerts/outbox.rows_for``)."""
    o = t.outbox.c
    with store.engine.begin() as conn:
        result = conn.execute(t.outbox.update().where(
            o.receiver == receiver, o.message_id.like(f"%.{int(url_index)}"),
            o.sent_at.is_(None), o.dead_at.is_(None),
            (o.next_attempt_at.is_(None)) | (o.next_attempt_at < until),
        ).values(next_attempt_at=until))
        return int(result.rowcount or 0)
