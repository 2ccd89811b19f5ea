"""The lineage step of a run: fetch what is missing, once per digest, then resolve (I/O edge).

For each scanned image of the registry (not an index: its children are the images) whose facts
history does not hold yet, read its manifest (``/v2/``, token auth) and its build history
through the registry's client, so under its rate limits; a digest's layers never change, so a
digest is fetched once. Then every image's base is resolved again (``daemon.lineage.resolve``):
an application image scanned before its base gets its base when the base is scanned.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from daemon import lineage, log
from daemon.errors import HarborError
from daemon.harbor.client import HarborClient
from daemon.lineage import Image, Lineage, Step
from daemon.lineage.advice import Advisor
from daemon.model import Artifact

if TYPE_CHECKING:
    from daemon.store.db import Store

_log = log.get(__name__)
BATCH = 200


def _steps(body: object) -> tuple[Step, ...]:
    if not isinstance(body, list):
        return ()
    out = []
    for entry in body:
        if isinstance(entry, dict):
            out.append(Step(str(entry.get("created_by") or ""), bool(entry.get("empty_layer")),
                            str(entry.get("created") or "")))
    return tuple(out)


def _layers(body: object) -> tuple[str, ...]:
    if not isinstance(body, dict) or not isinstance(body.get("layers"), list):
        return ()
    return tuple(str(x.get("digest")) for x in body["layers"]
                 if isinstance(x, dict) and x.get("digest"))


async def _facts(client: HarborClient, art: Artifact) -> Image | None:
    ref = art.ref
    try:
        manifest, history = await asyncio.gather(
            client.manifest(ref.project, ref.repository, ref.digest),
            client.build_history(ref.project, ref.repository, ref.digest))
    except HarborError as exc:
        _log.warning("lineage_fetch_failed", registry=client.name, digest=ref.digest,
                     error=str(exc))
        return None
    return Image(ref.digest, ref.project, ref.repository, tuple(t.name for t in art.tags),
                 art.push_time, _layers(manifest), _steps(history), art.base_name,
                 art.base_digest)


def registry_host(url: str) -> str:
    return urlsplit(url).netloc


async def update(client: HarborClient, store: Store, artifacts: list[Artifact],
                 scanned: set[str], now_fn: Callable[[], datetime]) -> dict[str, Lineage]:
    """Fetch the facts of ``scanned`` images not yet known, record them and re-resolve."""
    registry = client.registry
    db = store.thread
    known = await db.run(store.lineage_known, registry.name)
    wanted = [a for a in artifacts if a.type == "IMAGE" and not a.is_index
              and a.ref.digest in scanned and a.ref.digest not in known]
    fetched: list[Image] = []
    if wanted:  # the first alone: its 401 names the token realm for all the others
        first = await _facts(client, wanted[0])
        fetched.extend([first] if first is not None else [])
        wanted = wanted[1:]
    for start in range(0, len(wanted), BATCH):
        got = await asyncio.gather(*(_facts(client, a) for a in wanted[start:start + BATCH]))
        fetched.extend(i for i in got if i is not None)
    scope = lineage.in_scope(registry.base_images)
    host = registry_host(registry.url)
    found: dict[str, Lineage] = await db.run(
        store.record_lineage, registry.name, fetched, now_fn(),
        lambda every: lineage.resolve(every, registry_host=host, scope=scope))
    advice = await db.run(advisor, store, registry.name)
    targets: dict[str, str] = {}
    fixes: dict[str, frozenset[tuple[str, str]]] = {}
    for digest, one in found.items():
        rebuild = advice.rebuild(one.base_digest) if one.base_digest else None
        if rebuild is not None:
            targets[digest], fixes[digest] = rebuild[0].label, rebuild[1]
    events = await db.run(store.announce_rebuilds, registry.name, targets, fixes, now_fn())
    _log.info("lineage_updated", registry=registry.name, fetched=len(fetched),
              images=len(found), with_base=sum(1 for f in found.values() if f.base_digest),
              rebuild_events=events)
    return found


def advisor(store: Store, registry: str) -> Advisor:
    """One registry's lineage with what attribution compares: the package versions of each
    base image's latest report, and the report keys of every tag of the base repositories."""
    images, found = store.lineage_view(registry)
    bases = Advisor.bases_of(found)
    names = {i.name for i in images if i.digest in bases}
    related = {i.digest for i in images if i.name in names}
    return Advisor(images, found, store.lineage_packages(registry, bases),
                   store.lineage_report_keys(registry, related))


def with_lineage(ctx: Any, store: Store, registries: Iterable[str]) -> Any:
    """``ctx`` (an alerts RunContext) with each registry's Advisor."""
    return dataclasses.replace(ctx, lineage={r: advisor(store, r) for r in registries})
