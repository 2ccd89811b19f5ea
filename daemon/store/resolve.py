"""Findings that change without a scan: images that left the registry or lost their tags, and
ignore rules that changed (``daemon/diff.py`` decides; this loads and writes, in the
transaction of the connection given)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Row

from daemon import diff, log
from daemon.diff import StoredFinding
from daemon.ignores import NO_RULES, IgnoreRules
from daemon.model import ArtifactRef, ChangeEvent, Severity
from daemon.store import statements as q
from daemon.store import tables as t
from daemon.store.base import Caches, registry_id
from daemon.store.batch import Key, Target
from daemon.store.content import ContentCache
from daemon.store.history import (
    carried_keys,
    content_keys,
    store_events,
    stored_findings,
    write_findings,
)

_log = log.get(__name__)


def resolve_removed(
    conn: Connection, caches: Caches, registry: str, removed: Sequence[ArtifactRef | str],
    now: datetime, rules: IgnoreRules = NO_RULES,
) -> list[ChangeEvent]:
    """Stop counting artifacts the inventory no longer lists (or no longer tags); findings
    that no other counting artifact of their repository carries are fixed
    (``diff.retire``)."""
    wanted = {r.digest if isinstance(r, ArtifactRef) else r for r in removed}
    exact = {(r.project, r.repository, r.digest) for r in removed if isinstance(r, ArtifactRef)}
    if not wanted:
        return []
    a, r, tg = t.artifact.c, t.repository.c, t.tag.c
    events: list[ChangeEvent] = []
    reg_id = registry_id(conn, caches, registry, now, create=False)
    if reg_id is None:
        return []
    tagged = select(tg.id).where(tg.artifact_id == a.id, tg.until.is_(None)).exists()
    rows = conn.execute(
        select(a.id, a.digest, a.content_id, a.removed_at, a.repository_id,
               r.project, r.name)
        .join(t.repository, r.id == a.repository_id)
        .where(r.registry_id == reg_id, a.digest.in_(sorted(wanted)),
               a.counting.is_(True), a.content_id.is_not(None),
               a.removed_at.is_not(None) | ~tagged)).all()
    plain = {r for r in removed if isinstance(r, str)}
    rows = [row for row in rows
            if row.digest in plain or (row.project, row.name, row.digest) in exact]
    by_repo: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_repo[row.repository_id].append(row)
    for repo_id, gone in by_repo.items():
        events.extend(retire(conn, caches.contents, registry, repo_id, gone, now, rules))
    if events:
        _log.info("findings_resolved", registry=registry, count=len(events))
    return events


def retire(
    conn: Connection, cache: ContentCache, registry: str, repo_id: int, gone: list[Row[Any]],
    now: datetime, rules: IgnoreRules,
) -> list[ChangeEvent]:
    """The findings of ``gone`` (one repository's departing images) as ``diff.retire``
    decides, written; the events recorded."""
    ids = {row.id for row in gone}
    conn.execute(q.UNCOUNT_ARTIFACTS, {"ids": sorted(ids)})
    dropped = set().union(*(content_keys(conn, cache, row.content_id) for row in gone))
    carried = carried_keys(conn, cache, repo_id, ids, dropped)
    findings = stored_findings(conn, repo_id)
    tg = t.tag.c
    departed = []
    for row in gone:
        taken = False
        if row.removed_at is None:
            # still listed but untagged: did its tags move on to another image?
            names = select(tg.name).where(tg.artifact_id == row.id)
            taken = conn.execute(select(tg.id).where(
                tg.repository_id == repo_id, tg.until.is_(None),
                tg.name.in_(names))).first() is not None
        departed.append(diff.Departure(row.digest, content_keys(conn, cache, row.content_id),
                                       taken))
    target = Target(registry, gone[0].project, gone[0].name, repo_id)
    outcome = diff.retire(target.repo, departed, findings, carried, rules, now)
    write_findings(conn, repo_id, findings, outcome.writes, now)
    return store_events(conn, target, outcome.events, None, now, findings=findings)


def reconcile_ignores(
    conn: Connection, rules: IgnoreRules, now: datetime, registry: str | None = None
) -> list[ChangeEvent]:
    """Bring open findings' ignored marks in line with ``rules`` at ``now``
    (``diff.reconcile_ignores``); return the ``ignore_expired`` events it recorded."""
    f, r, g = t.finding.c, t.repository.c, t.registry.c
    query = (select(f.id, f.vulnerability, f.package, f.severity, f.fix_version,
                    f.installed_versions, f.ignored, f.ignore_reason, f.repository_id,
                    r.project, r.name, g.name.label("registry"))
             .join(t.repository, r.id == f.repository_id)
             .join(t.registry, g.id == r.registry_id)
             .where(f.resolved_at.is_(None)))
    if not rules:
        query = query.where(f.ignored.is_(True))  # only marks to clear
    if registry is not None:
        query = query.where(g.name == registry)
    events: list[ChangeEvent] = []
    by_repo: dict[int, tuple[Target, dict[Key, StoredFinding]]] = {}
    for row in conn.execute(query):
        entry = by_repo.get(row.repository_id)
        if entry is None:
            entry = by_repo[row.repository_id] = (
                Target(row.registry, row.project, row.name, row.repository_id), {})
        entry[1][(row.vulnerability, row.package)] = StoredFinding(
            row.id, Severity(row.severity), row.fix_version, row.installed_versions,
            False, row.ignored, row.ignore_reason)
    for repo_id, (target, findings) in by_repo.items():
        outcome = diff.reconcile_ignores(target.repo, findings, rules, now)
        write_findings(conn, repo_id, findings, outcome.writes, now)
        events.extend(store_events(conn, target, outcome.events, None, now,
                                   findings=findings))
    return events
