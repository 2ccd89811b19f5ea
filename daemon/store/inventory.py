"""Recording an inventory walk: repositories, artifacts (index children too) and tag intervals."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from daemon import log
from daemon.model import Artifact, ArtifactRef, InventoryDelta, TagMove
from daemon.store import tables as t
from daemon.store.base import Caches, registry_id
from daemon.store.batch import CHUNK, chunks

_log = log.get(__name__)
RECORD_STEP = 2000  # artifacts per step of record_inventory


def repository_ids(conn: Connection, reg_id: int
                   ) -> dict[tuple[str, str], tuple[int, datetime | None]]:
    r = t.repository.c
    rows = conn.execute(
        select(r.project, r.name, r.id, r.removed_at).where(r.registry_id == reg_id))
    return {(row[0], row[1]): (row[2], row[3]) for row in rows}


def present_artifacts(conn: Connection, registry: str) -> list[ArtifactRef]:
    """The top-level artifacts the last recorded walk of ``registry`` listed: what a new
    walk must account for (list, or confirm gone) before ``record_inventory`` removes them."""
    a, r, g = t.artifact.c, t.repository.c, t.registry.c
    query = (select(r.project, r.name, a.digest)
             .join(t.repository, r.id == a.repository_id)
             .join(t.registry, g.id == r.registry_id)
             .where(g.name == registry, a.removed_at.is_(None), a.parent_digest.is_(None)))
    # A project's and a repository's name once, not once per artifact (100,000 refs).
    names: dict[str, str] = {}
    return [ArtifactRef(registry, names.setdefault(row[0], row[0]),
                        names.setdefault(row[1], row[1]), row[2])
            for row in conn.execute(query)]


class Walked(Protocol):
    """A walk too large to hand over as one list of artifacts (``harbor.inventory``'s, packed
    a page at a time): its repositories' sizes, and the artifacts of a few repositories."""

    def repository_sizes(self) -> dict[tuple[str, str], int]: ...

    def of_repositories(self, keys: Collection[tuple[str, str]]
                        ) -> dict[tuple[str, str], list[Artifact]]: ...


class _Listed:
    """A walk given as a list of artifacts, read the way a packed one is."""

    def __init__(self, artifacts: Sequence[Artifact]) -> None:
        self._by_repo: dict[tuple[str, str], list[Artifact]] = {}
        for art in artifacts:
            self._by_repo.setdefault((art.ref.project, art.ref.repository), []).append(art)

    def repository_sizes(self) -> dict[tuple[str, str], int]:
        return {k: len(v) for k, v in self._by_repo.items()}

    def of_repositories(self, keys: Collection[tuple[str, str]]
                        ) -> dict[tuple[str, str], list[Artifact]]:
        return {k: self._by_repo[k] for k in keys if k in self._by_repo}


def record_inventory(
    conn: Connection, caches: Caches, registry: str, artifacts: Sequence[Artifact] | Walked,
    now: datetime, scope: Collection[tuple[str, str]] | None = None,
) -> InventoryDelta:
    """Record a full walk of ``registry``: upsert artifacts and tags, close moved or deleted
    tags, and mark artifacts and repositories the walk no longer lists as removed. With
    ``scope`` ((project, repository) pairs) the walk covered only those repositories:
    nothing outside them is touched."""
    reg_id = registry_id(conn, caches, registry, now, create=True)
    assert reg_id is not None
    walked = artifacts if not isinstance(artifacts, Sequence) else _Listed(artifacts)
    sizes = walked.repository_sizes()
    repos = sync_repositories(conn, reg_id, sizes, now, scope)
    if scope is not None:
        wanted = set(scope)
        repos = {k: v for k, v in repos.items() if k in wanted}
    new: list[ArtifactRef] = []
    deleted: list[ArtifactRef] = []
    moved: list[TagMove] = []
    untagged: list[ArtifactRef] = []
    # A few repositories at a time (up to ~RECORD_STEP artifacts), in the one transaction:
    # what each step loads and writes is bounded, whatever the size of the registry (and a
    # packed walk unpacks only those repositories' artifacts).
    for group in repository_groups(repos, {rid: sizes.get(k, 0) for k, rid in repos.items()}):
        listed = walked.of_repositories(group)
        arts = [a for key in group for a in listed.get(key, ())]
        del listed
        got_new, got_deleted, ids = sync_artifacts(conn, registry, reg_id, group, arts, now)
        got_moved, got_untagged = sync_tags(conn, registry, reg_id, group, ids, arts, now)
        new += got_new
        deleted += got_deleted
        moved += got_moved
        untagged += got_untagged
    delta = InventoryDelta(new=tuple(new), moved=tuple(moved), deleted=tuple(deleted),
                           untagged=tuple(untagged))
    _log.info("inventory_recorded", registry=registry, artifacts=sum(sizes.values()),
              new=len(new), moved=len(moved), deleted=len(deleted), untagged=len(untagged))
    return delta


def repository_groups(repos: dict[tuple[str, str], int], sizes: dict[int, int],
                      step: int = 0) -> list[dict[tuple[str, str], int]]:
    """``repos`` cut into groups of whole repositories holding about ``step`` walked
    artifacts each (``sizes``: per repository id; at most ``CHUNK`` repositories): one step
    of ``record_inventory``."""
    step = step or RECORD_STEP
    groups: list[dict[tuple[str, str], int]] = []
    current: dict[tuple[str, str], int] = {}
    size = 0
    for key, rid in sorted(repos.items(), key=lambda kv: kv[1]):
        current[key] = rid
        size += sizes.get(rid, 0) + 1
        if size >= step or len(current) >= CHUNK:
            groups.append(current)
            current, size = {}, 0
    if current:
        groups.append(current)
    return groups


def sync_repositories(
    conn: Connection, reg_id: int, listed: Collection[tuple[str, str]], now: datetime,
    scope: Collection[tuple[str, str]] | None = None,
) -> dict[tuple[str, str], int]:
    """Insert the (project, repository) pairs ``listed`` that history lacks, mark them seen
    and the others (within ``scope``) removed; every repository's id."""
    known = repository_ids(conn, reg_id)
    walked = None if scope is None else set(scope)
    wanted = set(listed)
    missing = sorted(wanted - set(known))
    if missing:
        conn.execute(t.repository.insert(), [
            {"registry_id": reg_id, "project": p, "name": n, "first_seen": now,
             "last_seen": now, "removed_at": None} for p, n in missing])
        known = repository_ids(conn, reg_id)
    r = t.repository.c
    seen = [known[k][0] for k in wanted]
    gone = [rid for k, (rid, removed) in known.items() if k not in wanted and removed is None
            and (walked is None or k in walked)]
    for chunk in chunks(seen):
        conn.execute(update(t.repository).where(r.id.in_(chunk))
                     .values(last_seen=now, removed_at=None))
    for chunk in chunks(gone):
        conn.execute(update(t.repository).where(r.id.in_(chunk)).values(removed_at=now))
    return {k: v[0] for k, v in known.items()}


def sync_artifacts(
    conn: Connection, registry: str, reg_id: int, repos: dict[tuple[str, str], int],
    artifacts: Sequence[Artifact], now: datetime,
) -> tuple[list[ArtifactRef], list[ArtifactRef], dict[tuple[int, str], int]]:
    a, r = t.artifact.c, t.repository.c
    in_walk = sorted(set(repos.values()))  # these repositories alone
    existing = {
        (row.repository_id, row.digest): row
        for row in conn.execute(
            select(a.id, a.repository_id, a.digest, a.removed_at, r.project, r.name)
            .join(t.repository, r.id == a.repository_id)
            .where(r.registry_id == reg_id, a.repository_id.in_(in_walk)))
    }
    walk: dict[tuple[int, str], dict[str, Any]] = {}
    tops: set[tuple[int, str]] = set()
    for art in artifacts:
        repo_id = repos[(art.ref.project, art.ref.repository)]
        for child in art.children:
            walk.setdefault((repo_id, child), _artifact_values(repo_id, child, None, now))
            walk[(repo_id, child)]["parent_digest"] = art.ref.digest
        walk[(repo_id, art.ref.digest)] = _artifact_values(repo_id, art.ref.digest, art, now)
        tops.add((repo_id, art.ref.digest))
    inserts = [v for k, v in walk.items() if k not in existing]
    if inserts:
        conn.execute(t.artifact.insert(), [
            {**v, "first_seen": now, "content_id": None, "counting": False,
             "last_scan_id": None, "last_success_scan_id": None, "consecutive_failures": 0}
            for v in inserts])
    updates = [{"_id": existing[k].id, **v} for k, v in walk.items() if k in existing]
    if updates:
        cols = [c for c in updates[0] if c not in ("_id", "repository_id", "digest")]
        conn.execute(
            update(t.artifact).where(a.id == bindparam("_id"))
            .values({c: bindparam(c) for c in cols}),
            [{k: u[k] for k in ("_id", *cols)} for u in updates])
    names = {rid: key for key, rid in repos.items()}
    new = [ArtifactRef(registry, *names[k[0]], k[1]) for k in walk
           if k not in existing and k in tops]
    deleted_rows = [row for k, row in existing.items()
                    if k not in walk and row.removed_at is None]
    for chunk in chunks([row.id for row in deleted_rows]):
        conn.execute(update(t.artifact).where(a.id.in_(chunk)).values(removed_at=now))
    deleted = [ArtifactRef(registry, row.project, row.name, row.digest) for row in deleted_rows]
    ids = {
        (row.repository_id, row.digest): row.id
        for row in conn.execute(
            select(a.id, a.repository_id, a.digest).where(a.repository_id.in_(in_walk)))
    }
    return new, deleted, ids


def sync_tags(
    conn: Connection, registry: str, reg_id: int, repos: dict[tuple[str, str], int],
    ids: dict[tuple[int, str], int], artifacts: Sequence[Artifact], now: datetime,
) -> tuple[list[TagMove], list[ArtifactRef]]:
    tg, r, a = t.tag.c, t.repository.c, t.artifact.c
    in_walk = sorted(set(repos.values()))  # these repositories alone
    open_tags = {
        (row.repository_id, row.name): row
        for row in conn.execute(
            select(tg.id, tg.repository_id, tg.name, tg.artifact_id, tg.digest)
            .where(tg.repository_id.in_(in_walk), tg.until.is_(None)))
    }
    walk: dict[tuple[int, str], tuple[int, str]] = {}
    for art in artifacts:
        repo_id = repos[(art.ref.project, art.ref.repository)]
        for tag in art.tags:
            walk[(repo_id, tag.name)] = (ids[(repo_id, art.ref.digest)], art.ref.digest)
    names = {rid: key for key, rid in repos.items()}
    close: list[int] = []
    opened: list[dict[str, Any]] = []
    moved: list[TagMove] = []
    successors: dict[int, set[int]] = {}
    for key, (art_id, digest) in walk.items():
        old = open_tags.get(key)
        if old is not None and old.artifact_id == art_id:
            continue
        if old is not None:
            close.append(old.id)
            moved.append(TagMove(*names[key[0]], key[1], old.digest, digest))
            successors.setdefault(old.artifact_id, set()).add(art_id)
        opened.append({"repository_id": key[0], "name": key[1], "artifact_id": art_id,
                       "digest": digest, "since": now, "until": None})
    close.extend(row.id for key, row in open_tags.items() if key not in walk)
    for chunk in chunks(close):
        conn.execute(update(t.tag).where(tg.id.in_(chunk)).values(until=now))
    if opened:
        conn.execute(t.tag.insert(), opened)
    # Artifacts that lost their last tag stop counting for findings, unless a successor that
    # took the tag is still unscanned: then its first successful scan retires them.
    before = {row.artifact_id for row in open_tags.values()}
    after = {art_id for art_id, _ in walk.values()}
    lost = sorted(before - after)
    untagged: list[ArtifactRef] = []
    if lost:
        rows = conn.execute(
            select(a.id, a.digest, a.counting, a.removed_at, r.project, r.name)
            .join(t.repository, r.id == a.repository_id).where(a.id.in_(lost))).all()
        succ_ids = sorted({s for v in successors.values() for s in v})
        scanned = {
            row[0] for row in conn.execute(
                select(a.id).where(a.id.in_(succ_ids), a.last_success_scan_id.is_not(None)))
        } if succ_ids else set()
        for row in rows:
            if not row.counting or row.removed_at is not None:
                continue
            if successors.get(row.id, set()) - scanned:
                continue
            untagged.append(ArtifactRef(registry, row.project, row.name, row.digest))
    return moved, untagged


def _artifact_values(
    repo_id: int, digest: str, art: Artifact | None, now: datetime
) -> dict[str, Any]:
    return {
        "repository_id": repo_id, "digest": digest,
        "type": art.type if art else "", "media_type": art.media_type if art else "",
        "manifest_media_type": art.manifest_media_type if art else "",
        "parent_digest": None, "size": art.size if art else 0,
        "push_time": art.push_time if art else None, "pull_time": art.pull_time if art else None,
        "last_seen": now, "removed_at": None,
    }

