"""Image lineage in the history DB (migration 7): functions over a Connection.

``known`` says which digests need no fetch (a digest's layers and history never change);
``save_facts`` adds what was fetched; ``images`` reads them back as ``lineage.Image``;
``save_found`` records each image's resolved base; ``found`` reads those; ``packages`` gives the
(package, version) pairs of a digest's latest successful report, which attribution compares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import MetaData, and_, select, update
from sqlalchemy.engine import Connection

from daemon.lineage import Image, Lineage, Step
from daemon.store import tables as t
from daemon.store.content import unpack_keys, unpack_rows
from daemon.store.migrations.m0011_lineage import table

image_lineage = table(MetaData())


def known(conn: Connection, registry: str) -> set[str]:
    rows = conn.execute(select(image_lineage.c.digest)
                        .where(image_lineage.c.registry_name == registry))
    return {r[0] for r in rows}


def save_facts(conn: Connection, registry: str, images: Iterable[Image], now: datetime) -> int:
    rows = [{"registry_name": registry, "digest": i.digest, "project": i.project,
             "repository": i.repository, "layers": json.dumps(list(i.layers)),
             "steps": json.dumps([[s.created, s.created_by, s.empty] for s in i.steps]),
             "base_name": i.base_name, "base_digest": i.base_digest, "method": "",
             "found_base_digest": "", "found_base": "", "rebuild_on": "", "fetched_at": now}
            for i in images]
    if rows:
        conn.execute(image_lineage.insert(), rows)
    return len(rows)


def images(conn: Connection, registry: str) -> list[Image]:
    """Every image with facts, its current tags and push time from the inventory."""
    lin = image_lineage
    rows = conn.execute(select(lin).where(lin.c.registry_name == registry)).all()
    tags: dict[str, list[str]] = {}
    pushed: dict[str, datetime | None] = {}
    q = (select(t.artifact.c.digest, t.artifact.c.push_time, t.tag.c.name)
         .select_from(t.artifact.join(t.repository, t.artifact.c.repository_id == t.repository.c.id)
                      .join(t.registry, t.repository.c.registry_id == t.registry.c.id)
                      .outerjoin(t.tag, and_(t.tag.c.artifact_id == t.artifact.c.id,
                                             t.tag.c.until.is_(None))))
         .where(t.registry.c.name == registry))
    for digest, push_time, name in conn.execute(q):
        pushed[digest] = push_time
        if name:
            tags.setdefault(digest, []).append(name)
    out = []
    for r in rows:
        steps = tuple(Step(by, bool(empty), created) for created, by, empty in json.loads(r.steps))
        out.append(Image(r.digest, r.project, r.repository, tuple(sorted(tags.get(r.digest, ()))),
                         pushed.get(r.digest), tuple(json.loads(r.layers)), steps,
                         r.base_name, r.base_digest))
    return out


def save_found(conn: Connection, registry: str, found: Mapping[str, Lineage]) -> None:
    lin = image_lineage
    for digest, one in found.items():
        conn.execute(update(lin).where(lin.c.registry_name == registry, lin.c.digest == digest)
                     .values(method=one.method, found_base_digest=one.base_digest,
                             found_base=one.base))


def found(conn: Connection, registry: str) -> dict[str, Lineage]:
    lin = image_lineage
    rows = conn.execute(select(lin.c.digest, lin.c.method, lin.c.found_base_digest,
                               lin.c.found_base).where(lin.c.registry_name == registry))
    return {d: Lineage(d, m or "unknown", b, label or "unknown") for d, m, b, label in rows}


def report_keys(conn: Connection, registry: str, digests: Iterable[str]
                ) -> dict[str, frozenset[tuple[str, str]]]:
    """Per digest, the (vulnerability, package) keys of its latest successful report."""
    return {d: unpack_keys(blob) for d, blob in _contents(conn, registry, digests)}


def packages(conn: Connection, registry: str, digests: Iterable[str]
             ) -> dict[str, frozenset[tuple[str, str]]]:
    """Per digest, the (package, installed version) pairs its latest report names."""
    out = {}
    for digest, blob in _contents(conn, registry, digests):
        out[digest] = frozenset((str(r[1]), str(r[2])) for r in unpack_rows(blob))
    return out


def _contents(conn: Connection, registry: str, digests: Iterable[str]) -> list[tuple[str, bytes]]:
    wanted = sorted(set(digests))
    if not wanted:
        return []
    q = (select(t.artifact.c.digest, t.report_content.c.occurrences)
         .select_from(t.artifact.join(t.repository, t.artifact.c.repository_id == t.repository.c.id)
                      .join(t.registry, t.repository.c.registry_id == t.registry.c.id)
                      .join(t.report_content, t.artifact.c.content_id == t.report_content.c.id))
         .where(t.registry.c.name == registry, t.artifact.c.digest.in_(wanted)))
    return [(d, bytes(b)) for d, b in conn.execute(q)]


def announce_rebuilds(conn: Connection, registry: str, targets: Mapping[str, str],
                      fixes: Mapping[str, frozenset[tuple[str, str]]], now: datetime) -> int:
    """For each image whose rebuild target (``targets``: digest → newer base label) differs
    from the one last announced, a ``rebuild_available`` event (reason ``base_updated``) per
    open finding of its repository that the image carries and the newer base lacks
    (``fixes``: digest → (vulnerability, package)). Returns the events written."""
    lin = image_lineage
    rows = conn.execute(select(lin.c.digest, lin.c.project, lin.c.repository, lin.c.rebuild_on)
                        .where(lin.c.registry_name == registry)).all()
    written = 0
    for digest, project, repository, announced in rows:
        target = targets.get(digest, "")
        if target == announced:
            continue
        conn.execute(update(lin).where(lin.c.registry_name == registry, lin.c.digest == digest)
                     .values(rebuild_on=target))
        wanted = fixes.get(digest, frozenset())
        if not target or not wanted:
            continue
        q = (select(t.finding.c.id, t.finding.c.repository_id, t.finding.c.vulnerability,
                    t.finding.c.package, t.finding.c.severity, t.finding.c.installed_versions,
                    t.finding.c.fix_version)
             .select_from(t.finding.join(t.repository,
                                         t.finding.c.repository_id == t.repository.c.id)
                          .join(t.registry, t.repository.c.registry_id == t.registry.c.id))
             .where(t.registry.c.name == registry, t.repository.c.project == project,
                    t.repository.c.name == repository, t.finding.c.resolved_at.is_(None)))
        events = [{"finding_id": fid, "repository_id": rid, "scan_id": None,
                   "kind": "rebuild_available", "reason": "base_updated", "at": now,
                   "severity": sev, "previous_severity": None,
                   "installed_version": (versions or "").split(",")[0], "previous_version": "",
                   "fix_version": fix, "digests": digest, "count": 1}
                  for fid, rid, vuln, pkg, sev, versions, fix in conn.execute(q)
                  if (vuln, pkg) in wanted]
        if events:
            conn.execute(t.finding_event.insert(), events)
            written += len(events)
    return written
