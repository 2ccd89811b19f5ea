"""A walk's artifacts kept packed, a listing page at a time: bytes, not objects.

A walk is held whole until the run is done with it (the registry-wide removal guard, the
recorded inventory, the imports, the selection, the lineage), and an ``Artifact`` as objects
costs about 1.3 KB (its ref, tags, overview, counts, half a dozen datetimes): 130 MB for
100,000 artifacts. Packed with ``marshal`` (every value is a str, int, bool or None) and
``zlib`` at its fastest level, a page of 100 costs about 17 KB (170 B an artifact; 380 B
without zlib, whose 4 µs an artifact is a tenth of what building the objects costs). Each page
is unpacked again where it is read, into equal ``Artifact`` values, and let go: a step holds
one page of objects, not the registry's.

A page also says what its readers ask of it without unpacking it: how many artifacts it holds
per repository, its indexes' children, and how many of its artifacts are images (scannable).
"""

from __future__ import annotations

import marshal
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from daemon.model import Artifact, ArtifactRef, ScannerInfo, ScanOverview, ScanState, Tag

PAGE = 100  # artifacts per packed page (a listing page)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Page:
    """Up to ``PAGE`` artifacts of one project, packed, in listing order."""

    blob: bytes
    registry: str
    project: str
    sizes: tuple[tuple[str, int], ...]  # (repository, artifacts) in first-listed order
    children: frozenset[tuple[str, str]]  # (repository, child digest) of its indexes
    images: int  # artifacts of type IMAGE
    scannable_images: int  # of those, the ones a scanner can scan

    def __len__(self) -> int:
        return sum(n for _, n in self.sizes)

    def artifacts(self) -> list[Artifact]:
        rows = marshal.loads(zlib.decompress(self.blob))
        return [_artifact(self.registry, self.project, row) for row in rows]


def pack(artifacts: Iterable[Artifact]) -> list[Page]:
    """``artifacts`` (of one registry and project) as pages of up to ``PAGE`` each."""
    pages: list[Page] = []
    chunk: list[Artifact] = []
    for art in artifacts:
        chunk.append(art)
        if len(chunk) == PAGE:
            pages.append(_page(chunk))
            chunk = []
    if chunk:
        pages.append(_page(chunk))
    return pages


def unpack(pages: Iterable[Page]) -> Iterator[Artifact]:
    """The artifacts of ``pages`` in order, a page of objects at a time."""
    for page in pages:
        yield from page.artifacts()


def count(pages: Iterable[Page]) -> int:
    return sum(len(p) for p in pages)


def _page(chunk: list[Artifact]) -> Page:
    sizes: dict[str, int] = {}
    for a in chunk:
        sizes[a.ref.repository] = sizes.get(a.ref.repository, 0) + 1
    images = [a for a in chunk if a.type.upper() == "IMAGE"]
    first = chunk[0].ref
    return Page(zlib.compress(marshal.dumps([_row(a) for a in chunk]), 1), first.registry,
                first.project,
                tuple(sizes.items()),
                frozenset((a.ref.repository, c) for a in chunk for c in a.children),
                len(images), sum(1 for a in images if a.scannable))


# -- one artifact as a row of plain values, and back ---------------------------------------

Time = int | tuple[int, int | None] | None


def _time(value: datetime | None) -> Time:
    """Microseconds since the epoch (UTC), else (microseconds, offset seconds or None when
    naive): the same instant and the same zone come back."""
    if value is None:
        return None
    if value.tzinfo is None:
        return ((value - _NAIVE_EPOCH) // _US, None)
    us = (value - _EPOCH) // _US
    if value.tzinfo is UTC:
        return us
    offset = value.utcoffset()
    return (us, int(offset.total_seconds()) if offset is not None else 0)


def _untime(value: Time) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int):
        return _EPOCH + value * _US
    us, offset = value
    if offset is None:
        return _NAIVE_EPOCH + us * _US
    return (_EPOCH + us * _US).astimezone(timezone(timedelta(seconds=offset)))


def _row(a: Artifact) -> tuple[object, ...]:
    o = a.overview
    overview = None if o is None else (
        o.report_id, o.state.value, o.complete_percent, _time(o.start_time), _time(o.end_time),
        None if o.scanner is None else (o.scanner.name, o.scanner.vendor, o.scanner.version),
        tuple(o.counts.items()), o.total, o.fixable)
    return (a.ref.repository, a.ref.digest, a.type, a.media_type, a.manifest_media_type,
            tuple((t.name, _time(t.push_time), _time(t.pull_time)) for t in a.tags),
            _time(a.push_time), _time(a.pull_time), a.scannable, overview, a.children,
            a.child_platforms, a.size, a.base_name, a.base_digest)


_scanners: dict[tuple[str, str, str], ScannerInfo] = {}


def _artifact(registry: str, project: str, row: Any) -> Artifact:
    (repository, digest, kind, media, manifest, tags, pushed, pulled, scannable, overview,
     children, platforms, size, base_name, base_digest) = row
    shown = None
    if overview is not None:
        report_id, state, percent, start, end, scanner, counts, total, fixable = overview
        info = None
        if scanner is not None:
            info = _scanners.get(scanner)
            if info is None:
                info = _scanners.setdefault(scanner, ScannerInfo(*scanner))
        shown = ScanOverview(report_id, ScanState(state), percent, _untime(start),
                             _untime(end), info, {sys.intern(k): n for k, n in counts}, total,
                             fixable)
    return Artifact(
        ArtifactRef(registry, project, sys.intern(repository), digest), sys.intern(kind),
        sys.intern(media), sys.intern(manifest),
        tuple(Tag(sys.intern(n), _untime(p), _untime(q)) for n, p, q in tags),
        _untime(pushed), _untime(pulled), scannable, shown, children, platforms, size,
        base_name, base_digest)
