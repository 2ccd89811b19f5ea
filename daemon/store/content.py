"""A report's occurrences in canonical form: hashed to dedupe, compressed to store once.

The canonical form is the JSON array of the occurrences sorted by key, each as
``[id, package, version, fix_version, severity, status, cvss_v3, [digests…]]``, followed by the
ecosystem only where the report named one. Descriptions, links, CWE ids and CVSS vectors are
left out: Harbor never refreshes them (a vector comes from ``vendor_attributes``, which a rescan
does not update; ``content_finding`` keeps the first one seen) and a diff must not see them,
so two reports that differ only there are the same content. The ecosystem is written only when
set so that every content stored before it existed (and every report read from Harbor, which
drops it) keeps its bytes and its hash.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from daemon.model import Occurrence, Severity

_SEVERITIES = {s.value: s for s in Severity}


_ROW = attrgetter("id", "package", "version", "fix_version", "severity", "status", "cvss_v3",
                  "artifact_digests")
_ROW_WITH_ECOSYSTEM = attrgetter("id", "package", "version", "fix_version", "severity", "status",
                                 "cvss_v3", "artifact_digests", "ecosystem")
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def canonical(occurrences: Sequence[Occurrence]) -> bytes:
    """The canonical bytes of a report's occurrences (sorted by occurrence key).

    JSON writes a tuple as an array and an IntEnum as its number, so the rows are the fields
    as they are (this runs once per stored scan: no per-field Python work).
    """
    if any(o.ecosystem for o in occurrences):
        rows = [r if r[8] else r[:8] for r in map(_ROW_WITH_ECOSYSTEM, occurrences)]
    else:
        rows = list(map(_ROW, occurrences))
    rows.sort()
    return _ENCODER.encode(rows).encode()


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(data: bytes) -> bytes:
    return zlib.compress(data, 1)


def unpack_keys(blob: bytes) -> frozenset[tuple[str, str]]:
    """Only the (vulnerability, package) keys of a stored content: cheaper than ``unpack``."""
    return frozenset((r[0], r[1]) for r in json.loads(zlib.decompress(blob)))


def unpack_rows(blob: bytes) -> list[list[Any]]:
    """A stored content's canonical rows as they are (``[id, package, version, fix_version,
    …]``): for readers that need a few fields of many contents, without building objects."""
    rows: list[list[Any]] = json.loads(zlib.decompress(blob))
    return rows


def unpack(blob: bytes) -> tuple[Occurrence, ...]:
    rows = unpack_rows(blob)
    return tuple(
        Occurrence(
            id=r[0], package=r[1], version=r[2], fix_version=r[3],
            severity=_SEVERITIES.get(r[4], Severity.UNKNOWN), status=r[5], cvss_v3=r[6],
            artifact_digests=tuple(r[7]), ecosystem=r[8] if len(r) > 8 else "",
        )
        for r in rows
    )


class ContentCache:
    """Decoded contents by row id. Content rows never change, so caching them is always safe.

    Two bounded LRUs: whole decoded reports (for diffs and ``findings``) and the far smaller
    sets of finding keys (for "does another image still carry it"), which are asked for most.
    """

    def __init__(self, size: int = 256, key_size: int = 1024) -> None:
        self._size = size
        self._items: OrderedDict[int, tuple[Occurrence, ...]] = OrderedDict()
        self._key_size = key_size
        self._keys: OrderedDict[int, frozenset[tuple[str, str]]] = OrderedDict()

    def has_keys(self, content_id: int) -> bool:
        return content_id in self._keys or content_id in self._items

    def get_keys(self, content_id: int) -> frozenset[tuple[str, str]] | None:
        found = self._keys.get(content_id)
        if found is not None:
            self._keys.move_to_end(content_id)
            return found
        whole = self._items.get(content_id)
        if whole is not None:
            found = frozenset((o.id, o.package) for o in whole)
            self.put_keys(content_id, found)
        return found

    def put_keys(self, content_id: int, keys: frozenset[tuple[str, str]]) -> None:
        self._keys[content_id] = keys
        self._keys.move_to_end(content_id)
        while len(self._keys) > self._key_size:
            self._keys.popitem(last=False)

    def get(self, content_id: int) -> tuple[Occurrence, ...] | None:
        found = self._items.get(content_id)
        if found is not None:
            self._items.move_to_end(content_id)
        return found

    def put(self, content_id: int, occurrences: tuple[Occurrence, ...]) -> None:
        self._items[content_id] = occurrences
        self._items.move_to_end(content_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
