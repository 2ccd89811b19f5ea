"""What history knows of a registry's last inventory, for `scanwatch schedule preview`."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from daemon.model import Artifact, ArtifactRef, Tag
from daemon.store import tables as t

if TYPE_CHECKING:
    from daemon.store.db import Store


def known_artifacts(store: Store, registry: str) -> list[Artifact]:
    """The top-level artifacts the last walk of ``registry`` listed, with their open tags.

    Only what selection needs: identity, type, tags and push/pull times. Whether Harbor can
    scan an artifact is not stored, so images and indexes count as scannable.
    """
    a, r, g, tg = t.artifact.c, t.repository.c, t.registry.c, t.tag.c
    base = (t.artifact.join(t.repository, r.id == a.repository_id)
            .join(t.registry, g.id == r.registry_id))
    query = (select(a.id, a.digest, a.type, a.media_type, a.push_time, a.pull_time,
                    r.project, r.name).select_from(base)
             .where(g.name == registry, a.removed_at.is_(None), a.parent_digest.is_(None)))
    tags_query = (select(tg.artifact_id, tg.name).select_from(
        t.tag.join(t.artifact, a.id == tg.artifact_id).join(t.repository, r.id == a.repository_id)
        .join(t.registry, g.id == r.registry_id))
        .where(g.name == registry, tg.until.is_(None)))
    with store.engine.connect() as conn:
        tags: dict[int, list[Tag]] = defaultdict(list)
        for row in conn.execute(tags_query):
            tags[row.artifact_id].append(Tag(row.name))
        return [
            Artifact(ArtifactRef(registry, row.project, row.name, row.digest), row.type,
                     media_type=row.media_type, tags=tuple(tags[row.id]),
                     push_time=row.push_time, pull_time=row.pull_time,
                     scannable=row.type.upper() == "IMAGE")
            for row in conn.execute(query)
        ]


def mean_scan_time(store: Store, registry: str) -> timedelta | None:
    """How long this registry's successful scans took on average, when history knows."""
    a, r, g, s = t.artifact.c, t.repository.c, t.registry.c, t.scan.c
    query = (select(s.started_at, s.finished_at)
             .join(t.artifact, a.id == s.artifact_id)
             .join(t.repository, r.id == a.repository_id)
             .join(t.registry, g.id == r.registry_id)
             .where(g.name == registry, s.status == "Success", s.trigger != "imported",
                    s.started_at.is_not(None), s.finished_at.is_not(None))
             .order_by(s.id.desc()).limit(200))
    with store.engine.connect() as conn:
        spans = [(row.finished_at - row.started_at) for row in conn.execute(query)]
    spans = [d for d in spans if d.total_seconds() >= 0]
    return sum(spans, timedelta()) / len(spans) if spans else None
