"""Image lineage in the history DB (migrations 11 and 15): functions over a Connection.

``known`` says which digests need no fetch (a digest's layers and history never change; a pull
refused is asked again after ``DENIED_RETRY``); ``save_facts`` adds what was fetched;
``images`` reads them back as ``lineage.Image``;
``save_found`` records each image's resolved base; ``found`` reads those; ``packages`` gives the
(package, version) pairs of a digest's latest successful report, which attribution compares.
``inputs`` fingerprints what resolving and attribution read (migration 22 keeps the last one:
``resolved_inputs``, ``save_resolved_inputs``), so that a run whose inputs did not change
reads none of it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import MetaData, and_, delete, select, update
from sqlalchemy.engine import Connection

from daemon.lineage import Image, Lineage, Step
from daemon.store import tables as t
from daemon.store.base import driver_rows
from daemon.store.content import unpack_rows
from daemon.store.migrations import m0022_lineage_inputs
from daemon.store.migrations.m0016_lineage_platforms import table
from daemon.store.tables import as_utc

image_lineage = table(MetaData())
lineage_resolved = m0022_lineage_inputs.table(MetaData())
READ_PAGE = 1000  # images read (and resolved lineage written) at a time
DENIED_RETRY = timedelta(days=1)  # a refused pull is asked again after this (access granted?)


def known(conn: Connection, registry: str, now: datetime | None = None,
          digests: Iterable[str] | None = None, layers_wanted: bool = False) -> set[str]:
    """Digests whose facts need no fetch: all but refused pulls older than ``DENIED_RETRY``
    (with ``digests``, of those alone). ``layers_wanted`` (a registry whose manifests are
    read): facts without layers, fetched while its manifests were not read, are asked again
    after ``DENIED_RETRY`` too."""
    lin = image_lineage
    query = select(lin.c.digest, lin.c.denied, lin.c.fetched_at, lin.c.layers == "[]").where(
        lin.c.registry_name == registry)
    wanted = None if digests is None else sorted(set(digests))
    statements = [query] if wanted is None else [
        query.where(lin.c.digest.in_(wanted[start:start + 500]))
        for start in range(0, len(wanted), 500)]
    return {d for statement in statements for d, denied, at, layerless in conn.execute(statement)
            if not (denied or (layers_wanted and layerless)) or now is None or at is None
            or now - at < DENIED_RETRY}


def names(conn: Connection, registry: str, digests: Iterable[str]) -> set[tuple[str, str]]:
    """(project, repository) of the images with these digests."""
    lin = image_lineage
    wanted = sorted(set(digests))
    out: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), 500):
        out.update((p, r) for p, r in conn.execute(
            select(lin.c.project, lin.c.repository).where(
                lin.c.registry_name == registry, lin.c.digest.in_(wanted[start:start + 500]))))
    return out


def save_facts(conn: Connection, registry: str, images: Iterable[Image], now: datetime) -> int:
    """Add (or, for a digest asked again, replace) the facts of ``images``."""
    lin = image_lineage
    rows = [{"registry_name": registry, "digest": i.digest, "project": i.project,
             "repository": i.repository, "layers": json.dumps(list(i.layers)),
             "steps": json.dumps([[s.created, s.created_by, s.empty] for s in i.steps]),
             "base_name": i.base_name, "base_digest": i.base_digest, "method": "",
             "found_base_digest": "", "found_base": "", "rebuild_on": "", "fetched_at": now,
             "platform": i.platform, "index_digest": i.index, "denied": i.denied}
            for i in images]
    for start in range(0, len(rows), 500):
        conn.execute(delete(lin).where(lin.c.registry_name == registry, lin.c.digest.in_(
            [r["digest"] for r in rows[start:start + 500]])))
    if rows:
        conn.execute(lin.insert(), rows)
    return len(rows)


Marks = tuple[dict[str, tuple[str, ...]], dict[str, datetime | None]]
Shared = tuple[dict[str, str], dict[tuple[str, str, bool], Step]]  # layers, steps


def images(conn: Connection, registry: str, names: Collection[str] | None = None
           ) -> list[Image]:
    """Every image with facts (of these ``project/repository`` names only, with ``names``),
    its current tags and push time from the inventory."""
    lin = image_lineage
    tags, pushed = _inventory(conn, registry, None)
    # Read row by row (not all rows, then all images): one copy of the facts at a time.
    # Images on one base share its layers and build steps: each is kept once, not once per
    # image (a registry of 100,000 images held millions of equal strings and steps).
    shared: Shared = ({}, {})
    return [_image(r, tags, pushed, shared)
            for r in conn.execute(select(lin).where(lin.c.registry_name == registry))
            if names is None or f"{r.project}/{r.repository}" in names]


def inventory_marks(conn: Connection, registry: str) -> Marks:
    """Each artifact's current tags and push time, by digest (what ``each_image`` adds to an
    image's facts)."""
    return _inventory(conn, registry, None)


class Reread(Iterable[Image]):
    """The registry's images, read again from their rows at each iteration (``each_image``):
    what resolving iterates twice without holding every image between the two."""

    def __init__(self, conn: Connection, registry: str, marks: Marks) -> None:
        self._conn, self._registry, self._marks = conn, registry, marks

    def __iter__(self) -> Iterator[Image]:
        return each_image(self._conn, self._registry, self._marks)


def each_image(conn: Connection, registry: str, marks: Marks) -> Iterator[Image]:
    """``images`` one at a time, as the rows come (``marks``: ``inventory_marks``), sharing
    no build step or layer digest across them: a caller that lets each image go would only
    hold every one of the registry's alive."""
    lin = image_lineage
    tags, pushed = marks
    # A page at a time (by digest, each read whole before its images are handed on): no
    # statement is left open while the caller writes resolved lineage between pages, and
    # PostgreSQL's driver does not receive every row's facts at once.
    after = ""
    while page := conn.execute(select(lin).where(lin.c.registry_name == registry,
                                                 lin.c.digest > after)
                               .order_by(lin.c.digest).limit(READ_PAGE)).all():
        after = page[-1].digest
        for r in page:
            yield _image(r, tags, pushed, None)


def _inventory(conn: Connection, registry: str, digests: Iterable[str] | None) -> Marks:
    """The open tags (sorted) and push time of ``registry``'s artifacts (only ``digests``' if
    given). Digests interned, tag names kept once: the images hold the same strings."""
    tags: dict[str, list[str]] = {}
    pushed: dict[str, datetime | None] = {}
    names: dict[str, str] = {}
    q = (select(t.artifact.c.digest, t.artifact.c.push_time, t.tag.c.name)
         .select_from(t.artifact.join(t.repository, t.artifact.c.repository_id == t.repository.c.id)
                      .join(t.registry, t.repository.c.registry_id == t.registry.c.id)
                      .outerjoin(t.tag, and_(t.tag.c.artifact_id == t.artifact.c.id,
                                             t.tag.c.until.is_(None))))
         .where(t.registry.c.name == registry))
    wanted = None if digests is None else set(digests)
    # One pass either way (no index leads with the digest: each IN would be one too).
    for digest, push_time, name in driver_rows(conn, q):
        if wanted is None or digest in wanted:
            digest = sys.intern(digest)
            pushed[digest] = as_utc(push_time) if push_time is not None else None
            if name:
                tags.setdefault(digest, []).append(names.setdefault(name, name))
    return {d: tuple(sorted(carried)) for d, carried in tags.items()}, pushed


def _image(r: Any, tags: dict[str, tuple[str, ...]], pushed: dict[str, datetime | None],
           shared: Shared | None) -> Image:
    """One lineage row as an Image; ``shared``: equal layers and steps kept once across the
    images read with it (None: each image its own)."""
    layers, steps_of = shared if shared is not None else ({}, {})
    steps = []
    for created, by, empty in orjson.loads(r.steps):
        key = (created, by, bool(empty))
        step = steps_of.get(key)
        if step is None:
            step = Step(by, bool(empty), created)
            if shared is not None:
                steps_of[key] = step
        steps.append(step)
    tagged = r.index_digest or r.digest  # an index's child: the index's tags and push
    return Image(sys.intern(r.digest), sys.intern(r.project), sys.intern(r.repository),
                 tags.get(tagged, ()), pushed.get(tagged),
                 tuple(layers.setdefault(x, x) for x in orjson.loads(r.layers))
                 if shared is not None else tuple(orjson.loads(r.layers)),
                 tuple(steps),
                 r.base_name, r.base_digest, r.platform, r.index_digest, r.denied,
                 r.digest in pushed)


def view_of(conn: Connection, registry: str, digests: Iterable[str]
            ) -> tuple[list[Image], dict[str, Lineage]]:
    """``images`` and ``found`` as far as attributing findings of ``digests`` reads them
    (``lineage.advice.Advisor.source``): those images and their children (an index's), the
    lineage of each, their bases and every image of the bases' repositories (a newer tag to
    rebuild on). The same answers as the whole registry's for those findings, without
    reading every image of a large registry."""
    lin = image_lineage.c
    wanted = set(digests)
    children = [d for d, index in driver_rows(conn, select(lin.digest, lin.index_digest).where(
        lin.registry_name == registry, lin.index_digest != "")) if index in wanted]
    ours = _rows(conn, registry, sorted(wanted | set(children)), lin.digest)
    bases = sorted({r.found_base_digest for r in ours if r.found_base_digest})
    names = {(r.project, r.repository) for r in _rows(conn, registry, bases, lin.digest)}
    related = [r for project, repository in sorted(names) for r in conn.execute(
        select(image_lineage).where(lin.registry_name == registry, lin.project == project,
                                    lin.repository == repository))]
    rows = {r.digest: r for r in (*ours, *related)}
    tags, pushed = _inventory(conn, registry, {d for r in rows.values()
                                               for d in (r.digest, r.index_digest) if d})
    shared: Shared = ({}, {})
    return ([_image(r, tags, pushed, shared) for r in rows.values()],
            {r.digest: _lineage(r.digest, r.method, r.found_base_digest, r.found_base)
             for r in ours})


def _rows(conn: Connection, registry: str, digests: list[str], column: Any) -> list[Any]:
    """The lineage rows of ``registry`` whose ``column`` is one of ``digests``."""
    lin = image_lineage.c
    return [r for start in range(0, len(digests), 500) for r in conn.execute(
        select(image_lineage).where(lin.registry_name == registry,
                                    column.in_(digests[start:start + 500])))]


def inputs(conn: Connection, registry: str, salt: str) -> str:
    """A fingerprint of everything ``images``, ``found``'s resolution and attribution read for
    ``registry``: each image's facts (not what resolving wrote), each artifact's push time,
    open tags, parent and report content. Read row by row and summed, so it holds one row at
    a time and does not depend on the order rows come in (PostgreSQL's moves as rows are
    updated). ``salt``: what else the resolution depends on (the registry's host, the
    ``base_images`` globs)."""
    a, lin = t.artifact.c, image_lineage.c
    arts = (select(a.digest, a.push_time, a.parent_digest, a.content_id, a.removed_at,
                   t.tag.c.name)
            .select_from(t.artifact.join(t.repository, a.repository_id == t.repository.c.id)
                         .join(t.registry, t.repository.c.registry_id == t.registry.c.id)
                         .outerjoin(t.tag, and_(t.tag.c.artifact_id == a.id,
                                                t.tag.c.until.is_(None))))
            .where(t.registry.c.name == registry))
    facts = select(lin.digest, lin.project, lin.repository, lin.layers, lin.steps,
                   lin.base_name, lin.base_digest, lin.platform, lin.index_digest,
                   lin.denied).where(lin.registry_name == registry)
    total, rows = 0, 0
    for kind, stmt in ((b"a", arts), (b"l", facts)):
        for row in driver_rows(conn, stmt):
            digest = hashlib.blake2b(kind + repr(tuple(row)).encode(), digest_size=16).digest()
            total = (total + int.from_bytes(digest, "big")) % (1 << 128)
            rows += 1
    return f"{salt}|{rows}|{total:032x}"


def resolved_inputs(conn: Connection, registry: str) -> str:
    """The fingerprint ``registry``'s lineage was last resolved from ("" if never)."""
    lr = lineage_resolved.c
    found = conn.execute(select(lr.inputs).where(lr.registry_name == registry)).scalar()
    return str(found or "")


def save_resolved_inputs(conn: Connection, registry: str, fingerprint: str,
                         now: datetime) -> None:
    lr = lineage_resolved.c
    conn.execute(delete(lineage_resolved).where(lr.registry_name == registry))
    conn.execute(lineage_resolved.insert().values(registry_name=registry, inputs=fingerprint,
                                                  resolved_at=now))


def save_found(conn: Connection, registry: str, found: Mapping[str, Lineage]) -> None:
    lin = image_lineage
    for digest, one in found.items():
        conn.execute(update(lin).where(lin.c.registry_name == registry, lin.c.digest == digest)
                     .values(method=one.method, found_base_digest=one.base_digest,
                             found_base=one.base))


def changed(conn: Connection, registry: str, resolved: Mapping[str, Lineage]
            ) -> dict[str, Lineage]:
    """Of ``resolved`` (images with facts: a row each), the lineage that differs from the
    stored one (read for those digests alone: a resolution compares a page at a time)."""
    stored = {r.digest: r for r in _rows(conn, registry, sorted(resolved),
                                         image_lineage.c.digest)}
    out: dict[str, Lineage] = {}
    for digest, one in resolved.items():
        r = stored.get(digest)
        if r is not None and one != Lineage(digest, r.method or "unknown", r.found_base_digest,
                                            r.found_base or "unknown"):
            out[digest] = one
    return out


def found(conn: Connection, registry: str) -> dict[str, Lineage]:
    lin = image_lineage
    rows = conn.execute(select(lin.c.digest, lin.c.method, lin.c.found_base_digest,
                               lin.c.found_base).where(lin.c.registry_name == registry))
    return {d: _lineage(d, m, b, label) for d, m, b, label in rows}


def _lineage(digest: str, method: str | None, base: str, label: str | None) -> Lineage:
    return Lineage(digest, method or "unknown", base, label or "unknown")


def report_keys(conn: Connection, registry: str, digests: Iterable[str]
                ) -> dict[str, frozenset[tuple[str, str]]]:
    """Per digest, the (vulnerability, package) keys of its latest successful report."""
    return {d: frozenset((str(r[0]), str(r[1])) for r in rows)
            for d, rows in _contents(conn, registry, digests).items()}


def packages(conn: Connection, registry: str, digests: Iterable[str]
             ) -> dict[str, frozenset[tuple[str, str]]]:
    """Per digest, the (package, installed version) pairs its latest report names."""
    return {d: frozenset((str(r[1]), str(r[2])) for r in rows)
            for d, rows in _contents(conn, registry, digests).items()}


def _contents(conn: Connection, registry: str, digests: Iterable[str]
              ) -> dict[str, list[list[Any]]]:
    """Per digest, the canonical rows of its latest successful report; an index's child has
    none of its own (Harbor's report is the index's, merged): the rows of its index's report
    whose ``artifact_digests`` name the child."""
    wanted = sorted(set(digests))
    if not wanted:
        return {}
    a = t.artifact.c
    where = (t.artifact.join(t.repository, a.repository_id == t.repository.c.id)
             .join(t.registry, t.repository.c.registry_id == t.registry.c.id))
    out: dict[str, list[list[Any]]] = {}
    parents: dict[str, list[str]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        q = (select(a.digest, a.parent_digest, t.report_content.c.occurrences)
             .select_from(where.outerjoin(t.report_content,
                                          a.content_id == t.report_content.c.id))
             .where(t.registry.c.name == registry, a.digest.in_(chunk)))
        for digest, parent, blob in conn.execute(q):
            if blob is not None:
                out[digest] = unpack_rows(bytes(blob))
            elif parent:
                parents.setdefault(parent, []).append(digest)
    if parents:
        q = (select(a.digest, t.report_content.c.occurrences)
             .select_from(where.join(t.report_content, a.content_id == t.report_content.c.id))
             .where(t.registry.c.name == registry, a.digest.in_(sorted(parents))))
        for digest, blob in conn.execute(q):
            rows = unpack_rows(bytes(blob))
            for child in parents[digest]:
                out.setdefault(child, [r for r in rows if child in r[7]])
    return out


def announce_rebuilds(conn: Connection, registry: str, targets: Mapping[str, str],
                      fixes: Mapping[str, frozenset[tuple[str, str]]], now: datetime) -> int:
    """For each image whose rebuild target (``targets``: digest → newer base label) differs
    from the one last announced, a ``rebuild_available`` event (reason ``base_updated``) per
    open finding of its repository that the image carries and the newer base lacks
    (``fixes``: digest → (vulnerability, package)). An index's children speak for the index:
    one event per finding, naming the index's digest. Returns the events written."""
    lin = image_lineage
    rows = conn.execute(select(lin.c.digest, lin.c.project, lin.c.repository, lin.c.rebuild_on,
                               lin.c.index_digest)
                        .where(lin.c.registry_name == registry)).all()
    carriers: dict[tuple[str, str, str], set[tuple[str, str]]] = {}
    for digest, project, repository, announced, index in rows:
        target = targets.get(digest, "")
        if target == announced:
            continue
        conn.execute(update(lin).where(lin.c.registry_name == registry, lin.c.digest == digest)
                     .values(rebuild_on=target))
        wanted = fixes.get(digest, frozenset())
        if target and wanted:
            carriers.setdefault((project, repository, index or digest), set()).update(wanted)
    written = 0
    for (project, repository, carrier), fixed in sorted(carriers.items()):
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
                   "fix_version": fix, "digests": carrier, "count": 1}
                  for fid, rid, vuln, pkg, sev, versions, fix in conn.execute(q)
                  if (vuln, pkg) in fixed]
        if events:
            conn.execute(t.finding_event.insert(), events)
            written += len(events)
    return written
