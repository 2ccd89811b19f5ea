"""A report's occurrences in canonical form: hashed to dedupe, compressed to store once.

The canonical form is the JSON array of the occurrences sorted by key, each as
``[id, package, version, fix_version, severity, status, cvss_v3, [digests…]]``. Descriptions,
links and CWE ids are left out: Harbor never refreshes them and a diff must not see them, so two
reports that differ only there are the same content.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import OrderedDict
from collections.abc import Sequence

from daemon.model import Occurrence, Severity

_SEVERITIES = {s.value: s for s in Severity}


def canonical(occurrences: Sequence[Occurrence]) -> bytes:
    """The canonical bytes of a report's occurrences (sorted by occurrence key)."""
    rows = sorted(
        (o.id, o.package, o.version, o.fix_version, int(o.severity), o.status, o.cvss_v3,
         list(o.artifact_digests))
        for o in occurrences
    )
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(data: bytes) -> bytes:
    return zlib.compress(data, 1)


def unpack(blob: bytes) -> tuple[Occurrence, ...]:
    rows = json.loads(zlib.decompress(blob))
    return tuple(
        Occurrence(
            id=r[0], package=r[1], version=r[2], fix_version=r[3],
            severity=_SEVERITIES.get(r[4], Severity.UNKNOWN), status=r[5], cvss_v3=r[6],
            artifact_digests=tuple(r[7]),
        )
        for r in rows
    )


class ContentCache:
    """Decoded contents by row id. Content rows never change, so caching them is always safe."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[int, tuple[Occurrence, ...]] = OrderedDict()

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
