"""The lineage step of a run: fetch what is missing, once per digest, then resolve (I/O edge).

For each scanned image of the registry whose facts history does not hold yet, read its manifest
(``/v2/``, token auth) and its build history through the registry's client, so under its rate
limits; a digest's layers never change, so a digest is fetched once. An image index is not an
image: each of its children is (its platform from the listing's ``references``), fetched by its
digest, its base annotations read from its own manifest. Then every image's base is resolved
again (``daemon.lineage.resolve``): an application image scanned before its base gets its base
when the base is scanned.

Harbor records each ``GET`` of a manifest through ``/v2/`` as a pull (the artifact's pull time,
the repository's pull count, a pull in the audit log), which pull-based retention rules and
``only_pulled_within`` read; a registry with ``read_manifests = false`` is read through its
build history and the listing's annotations alone (the additions API is Harbor's own read, no
pull), and no base is probed.

A pull the registry refuses (Harbor issues a token that opens nothing, then ``/v2/`` answers
401, or 403/404 behind some proxies) is recorded as "no pull access to PROJECT" and not asked
again for a day (``store.lineage.DENIED_RETRY``): once one image of a project is refused, the
run asks no other manifest of that project, and says so in one log line per project. So does
a base that an annotation names on this registry but the walk never listed: its manifest is
asked for once, to tell "no pull access" from a base outside the walk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from daemon import lineage, log
from daemon.errors import AuthFailed, HarborError, NotFound
from daemon.lineage import BASE_DIGEST, BASE_NAME, Image, Lineage, Step, split_ref
from daemon.lineage.advice import Advisor
from daemon.model import Artifact

if TYPE_CHECKING:  # httpx (the client's) is not imported by the readers of stored lineage
    from daemon.config_types import RegistryConfig
    from daemon.harbor.client import HarborClient
    from daemon.store.db import Store

_log = log.get(__name__)
BATCH = 200
TARGET_BATCH = 100  # artifacts looked at per read of what history holds of them (a page)
RESOLVED_BY = "1"  # the resolution's own version: a change to its rules resolves every image


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


def _annotation(body: object, key: str) -> str:
    notes = body.get("annotations") if isinstance(body, dict) else None
    value = notes.get(key) if isinstance(notes, dict) else None
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class Target:
    """One image whose facts are read: a listed image, an index's child, or a probed base."""

    project: str
    repository: str
    digest: str
    base_name: str = ""  # the listing's annotations (an index's own, for its children)
    base_digest: str = ""
    platform: str = ""
    index: str = ""
    probe: bool = False  # a base an annotation names: its manifest only

    def image(self, **facts: Any) -> Image:
        return Image(self.digest, self.project, self.repository, base_name=self.base_name,
                     base_digest=self.base_digest, platform=self.platform, index=self.index,
                     **facts)


def _listed_among(artifacts: Iterable[Artifact], digests: Collection[str]) -> set[str]:
    """Those of ``digests`` that ``artifacts`` list, themselves or as an index's child."""
    return {d for a in artifacts for d in (a.ref.digest, *a.children) if d in digests}


def targets(artifacts: Iterable[Artifact], scanned: Collection[str], known: Collection[str]
            ) -> list[Target]:
    """The scanned images (an index's children in its place) whose facts are not known."""
    out: list[Target] = []
    for a in artifacts:
        ref = a.ref
        if a.type != "IMAGE" or ref.digest not in scanned:
            continue
        if a.is_index:
            platforms = a.child_platforms or ("",) * len(a.children)
            out.extend(Target(ref.project, ref.repository, child, a.base_name, a.base_digest,
                              platform, ref.digest)
                       for child, platform in zip(a.children, platforms, strict=False)
                       if child not in known)
        elif ref.digest not in known:
            out.append(Target(ref.project, ref.repository, ref.digest, a.base_name,
                              a.base_digest))
    return sorted(out, key=lambda t: (t.project, t.repository, t.digest))


def _refusal(exc: BaseException) -> str:
    """How a manifest fetch was refused ("401"), or "" when it was something else."""
    if isinstance(exc, (AuthFailed, NotFound)):
        return str(exc.status or "refused")
    return ""


class _Fetcher:
    """One run's fetches for one registry, with the projects that refused a pull so far."""

    def __init__(self, client: HarborClient) -> None:
        self.client = client
        self.refused: dict[str, list[Any]] = {}  # project -> [status, images refused]

    async def facts(self, t: Target) -> Image | None:
        client = self.client
        refused = t.project in self.refused
        skip = refused or not client.registry.read_manifests
        calls: list[Any] = []
        if not skip:
            calls.append(client.manifest(t.project, t.repository, t.digest))
        if not t.probe:
            calls.append(client.build_history(t.project, t.repository, t.digest))
        got = list(await asyncio.gather(*calls, return_exceptions=True))
        manifest = None if skip else got.pop(0)
        history = got.pop(0) if not t.probe else None
        denied = t.project if refused else ""
        if isinstance(manifest, BaseException):
            how = _refusal(manifest)
            if not how:
                self._failed(t, manifest)
                return None
            manifest, denied = None, t.project
            self.refused.setdefault(t.project, [how, 0])
        if denied:
            self.refused[t.project][1] += 1
        if isinstance(history, BaseException):
            if not _refusal(history):
                self._failed(t, history)
                return None
            history = None  # this account may not read additions: layers alone
        found = t.image(layers=_layers(manifest), steps=_steps(history), denied=denied)
        name, digest = _annotation(manifest, BASE_NAME), _annotation(manifest, BASE_DIGEST)
        if name or digest:  # the image's own manifest says it (an index's child does)
            found = dataclasses.replace(found, base_name=name, base_digest=digest)
        return found

    def _failed(self, t: Target, exc: BaseException) -> None:
        if not isinstance(exc, HarborError):
            raise exc
        _log.warning("lineage_fetch_failed", registry=self.client.name, digest=t.digest,
                     error=str(exc))
        return None

    async def run(self, wanted: Sequence[Target],
                  sink: Callable[[list[Image]], Awaitable[None]]) -> None:
        """Each target's facts, handed to ``sink`` a batch (up to ``BATCH``) at a time: the
        first alone (its 401 names the token realm), then the first of each project (a
        refusal spares the project's other manifests), then the rest."""
        if not wanted:
            return
        firsts: dict[str, Target] = {}
        for t in wanted[1:]:
            firsts.setdefault(t.project, t)
        firsts.pop(wanted[0].project, None)
        rest = [t for t in wanted[1:] if firsts.get(t.project) is not t]
        for group in ([wanted[0]], list(firsts.values()), rest):
            for start in range(0, len(group), BATCH):
                got = await asyncio.gather(*(self.facts(t) for t in group[start:start + BATCH]))
                batch = [i for i in got if i is not None]
                if batch:
                    await sink(batch)

    def report(self) -> None:
        """One log line per project that refused a pull in this run."""
        for project, (status, count) in sorted(self.refused.items()):
            _log.warning("lineage_no_pull_access", registry=self.client.name, project=project,
                         status=status, images=count,
                         detail=f"lineage is unknown (no pull access to {project}) for its "
                                "images; asked again in a day")


def probes(fetched: Iterable[Image], host: str, listed: Collection[str]) -> list[Target]:
    """Bases that fetched images' annotations name on this registry by digest, where the walk
    listed no such artifact (another project, perhaps one this account may not pull)."""
    out: dict[str, Target] = {}
    for image in fetched:
        ref_host, repo, _ = split_ref(image.base_name) if image.base_name else ("", "", "")
        if not image.base_digest or ref_host != host or image.base_digest in listed \
                or "/" not in repo:
            continue
        project, _, short = repo.partition("/")
        out.setdefault(image.base_digest, Target(project, short, image.base_digest,
                                                 probe=True))
    return list(out.values())


def registry_host(url: str) -> str:
    return urlsplit(url).netloc


def _missing(store: Store, registry: RegistryConfig, artifacts: Iterable[Artifact],
             now: datetime) -> list[Target]:
    """``targets`` of the walk, a batch at a time, each with what history says of that
    batch's digests alone (scanned, and facts known) read for it on the database's thread:
    no set of every digest. (This runs in a worker thread beside the loop.)"""
    out: list[Target] = []
    walk = iter(artifacts)
    while batch := list(itertools.islice(walk, TARGET_BATCH)):
        images = {a.ref.digest for a in batch if a.type == "IMAGE"}
        scanned = {d for d, r in store.thread.submit(store.scan_records, registry.name,
                                                     images).result().items()
                   if r.last_success_at is not None}
        named = {d for a in batch if a.ref.digest in scanned for d in (a.ref.digest,
                                                                        *a.children)}
        known = store.thread.submit(store.lineage_known, registry.name, now, named,
                                    registry.read_manifests).result()
        out.extend(targets(batch, scanned, known))
    return sorted(out, key=lambda t: (t.project, t.repository, t.digest))


async def fetch_missing(client: HarborClient, store: Store,
                        artifacts: Callable[[], Iterable[Artifact]],
                        now_fn: Callable[[], datetime]) -> int:
    """Fetch and store the facts of the walk's scanned images not yet known (and of the bases
    their annotations name on this registry, unlisted); how many images' facts were stored.
    ``artifacts``: the walk's, read again for each pass over it (a packed walk unpacks a page
    at a time)."""
    registry = client.registry
    db = store.thread
    host = registry_host(registry.url)
    now = now_fn()
    fetcher = _Fetcher(client)
    # Each batch's facts are stored as they arrive (a digest's facts never change): the run
    # holds one batch of them, not every image's, however large the registry.
    bases: dict[str, Target] = {}
    fetched = 0

    async def save(batch: list[Image]) -> None:
        nonlocal fetched
        fetched += len(batch)
        # A probe reads a manifest alone: none where manifests are not read.
        named = {i.base_digest for i in batch if i.base_digest} if registry.read_manifests \
            else set()
        known = await db.run(store.lineage_known, registry.name, now, named) if named \
            else set()
        for probe in probes(batch, host, known):
            bases.setdefault(probe.digest, probe)
        await db.run(store.save_lineage_facts, registry.name, batch, now_fn())

    # The passes over the whole walk run beside the loop (a worker thread), not on it.
    await fetcher.run(await asyncio.to_thread(_missing, store, registry, artifacts(), now),
                      save)
    # Of the bases named, those the walk listed (itself or as an index's child) are no
    # probes: looked for in one pass over the walk, not in a set of every digest it holds.
    walked = await asyncio.to_thread(_listed_among, artifacts(), bases) if bases else set()
    await fetcher.run([b for d, b in bases.items() if d not in walked], save)
    fetcher.report()
    return fetched


async def resolve_registry(client: HarborClient, store: Store,
                           now_fn: Callable[[], datetime], fetched: int = 0
                           ) -> dict[str, Lineage]:
    """Resolve every image's base again and announce the rebuilds it makes possible; the
    lineage of the images with a base in the registry, or none when nothing it is resolved
    from changed since the last resolution (the stored lineage stands). ``fetched``: facts
    this run stored (logged)."""
    registry = client.registry
    db = store.thread
    host = registry_host(registry.url)
    # Resolving reads every image's facts, and attribution the reports of the bases: most of
    # an unchanged rerun's memory on a large registry. Where none of what they read changed
    # since the last resolution (no facts fetched, no tag moved, no report stored), neither
    # would their outcome: they are left alone, having read one row at a time.
    salt = f"{RESOLVED_BY}|{host}|{','.join(registry.base_images)}"
    fingerprint, unchanged = await db.run(store.lineage_inputs, registry.name, salt)
    if unchanged:
        _log.info("lineage_unchanged", registry=registry.name, fetched=fetched)
        return {}
    scope = lineage.in_scope(registry.base_images)
    resolved = 0

    def resolving(images: Iterable[Image]) -> Iterator[tuple[str, Lineage]]:
        nonlocal resolved
        for pair in lineage.resolve_each(images, registry_host=host, scope=scope):
            resolved += 1
            yield pair

    # The lineage of the images with a base here (every image's is written as it comes).
    found: dict[str, Lineage] = await db.run(store.record_lineage, registry.name, (), now_fn(),
                                             resolving)
    advice = await db.run(advisor, store, registry.name, found)
    targets_on: dict[str, str] = {}
    fixes: dict[str, frozenset[tuple[str, str]]] = {}
    for digest, one in found.items():
        rebuild = advice.rebuild(one.base_digest) if one.base_digest else None
        if rebuild is not None:
            targets_on[digest], fixes[digest] = rebuild[0].label, rebuild[1]
    del advice
    events = await db.run(store.announce_rebuilds, registry.name, targets_on, fixes, now_fn())
    await db.run(store.lineage_resolved, registry.name, fingerprint, now_fn())
    _log.info("lineage_updated", registry=registry.name, fetched=fetched,
              images=resolved, with_base=len(found),
              rebuild_events=events)
    return found


def advisor(store: Store, registry: str, found: Mapping[str, Lineage] | None = None,
            digests: Iterable[str] | None = None) -> Advisor:
    """One registry's lineage with what attribution compares: the package versions of each
    base image's latest report, and the report keys of every tag of the base repositories.
    ``found``: the lineage just resolved (else the stored one is read); the Advisor then
    answers ``rebuild`` alone (what a run announces), holding the images of the base
    repositories only, not every image of the registry with its build history. ``digests``:
    only what attributing findings of those images reads (``Store.lineage_view_of``)."""
    if found is None:
        images, found = store.lineage_view(registry) if digests is None \
            else store.lineage_view_of(registry, digests)
        bases = Advisor.bases_of(found)
        names = {i.name for i in images if i.digest in bases}
    else:
        bases = Advisor.bases_of(found)
        names = {f"{project}/{repository}" for project, repository in
                 store.lineage_names(registry, bases)}
        images = store.lineage_images(registry, names) if names else []
    related = {i.digest for i in images if i.name in names}
    return Advisor(images, found, store.lineage_packages(registry, bases),
                   store.lineage_report_keys(registry, related))


class Advisors(Mapping[str, Advisor]):
    """Each registry's Advisor, read from ``store`` when a message first asks for it: a run
    whose messages name no finding of a registry (its first sight, an unchanged rerun) reads
    none of that registry's lineage, which holds every image (100,000 on a large registry)."""

    def __init__(self, store: Store, registries: Iterable[str]) -> None:
        self._store = store
        self._names = tuple(dict.fromkeys(registries))
        self._built: dict[str, Advisor] = {}

    def __getitem__(self, registry: str) -> Advisor:
        if registry not in self._names:
            raise KeyError(registry)
        found = self._built.get(registry)
        if found is None:
            found = self._built[registry] = advisor(self._store, registry)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def with_lineage(ctx: Any, store: Store, registries: Iterable[str]) -> Any:
    """``ctx`` (an alerts RunContext) with each registry's Advisor, read when first asked for
    (``store`` must stay open while the context is used)."""
    return dataclasses.replace(ctx, lineage=Advisors(store, registries))
