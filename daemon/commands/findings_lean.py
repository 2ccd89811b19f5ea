"""A whole `findings` listing written from lean rows (``store/listing.py``, issue 11): byte for
byte what ``findings`` writes of ``findings._record``'s records, at a fraction of the cost.

``--format json | jsonl`` (``write``): each record is put together from its parts, already
JSON, instead of being built as a dictionary and encoded. The summary's carriers and tags are
the JSON ``carrier_summary`` stores (written by orjson, as the record's encoder writes them):
spliced in as they are where the finding's images carry one installed version, decoded and
encoded again where they carry several; the times, SLA state, ignore and KEV/EPSS fields are
encoded once per distinct value (most findings share them). The table (``table_records``):
only the fields it shows and counts. A row that is not lean (its carriers read live) or whose
record is not ASCII (which the standard encoder escapes) goes through ``_record`` and its
encoder, as before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import orjson

from daemon.model import Severity
from daemon.store import listing as ls
from daemon.store.carrier_summary import one_version, versions
from daemon.store.findings import FindingRow
from daemon.store.tables import as_utc

_FLUSH = 1 << 18  # bytes gathered before each write
_CACHED = 1 << 16  # distinct values encoded once and kept (forgotten past this many)
_SEVERITY = {int(s): s for s in Severity}
_LABEL = {int(s): s.label for s in Severity}


def write(fmt: str, rows: Iterable[ls.Lean | FindingRow], general: Callable[[FindingRow], bytes],
          now: datetime, sla_for: Any, intel: Any, note: Callable[[Any], str] | None) -> None:
    """Every row on stdout as ``findings.write(fmt, …)`` writes its record: ``general``
    encodes one the lean way cannot."""
    from daemon.commands import findings as cmd

    encode = _encoder(general, now, sla_for, intel, note, cmd)
    sys.stdout.flush()
    out = sys.stdout.buffer
    parts: list[bytes] = []
    size = 0
    lines = fmt == "jsonl"
    before, after = (b"", b"\n") if lines else (b"[\n", b"")
    for row in rows:
        data = encode(row)
        parts += (before, data, after)
        size += len(data)
        if not lines:
            before = b",\n"
        if size >= _FLUSH:
            out.write(b"".join(parts))
            parts, size = [], 0
    if not lines:
        parts.append(b"[]\n" if before == b"[\n" else b"\n]\n")
    out.write(b"".join(parts))
    out.flush()


def _encoder(general: Callable[[FindingRow], bytes], now: datetime, sla_for: Any, intel: Any,
             note: Callable[[Any], str] | None, cmd: Any) -> Callable[[Any], bytes]:
    dumps = orjson.dumps
    kev = intel.kev if intel is not None else {}
    epss = intel.epss if intel is not None and intel.epss else None
    times = _times(now, sla_for, kev, lambda fields: dumps(fields)[1:-1])
    exploits: dict[str, bytes] = {}
    ignores: dict[tuple[bool, str], bytes] = {}
    not_exploited = dumps(cmd.NOT_EXPLOITED)[1:-1]
    no_vex = b'"vex":null}'
    label = _LABEL

    def encode(row: Any) -> bytes:
        if isinstance(row, FindingRow):  # read live (``listing``: every other row is usable)
            return general(row)
        cve, level = row[ls.VULNERABILITY], row[ls.SEVERITY]
        carriers = row[ls.S_CARRIERS].encode()
        one = one_version(carriers)
        if one is not None:
            version, digests = one
            installed = orjson.loads(version)
            held = (b'"digests":' + digests + b',"installed_versions":[{"version":' + version
                    + b',"digests":' + digests + b"}]")
        else:
            carried = orjson.loads(carriers)
            installed = ", ".join([v for v, _ in carried])
            every = sorted({d for _, ds in carried for d in ds})
            held = (b'"digests":' + dumps(every) + b',"installed_versions":'
                    + dumps([{"version": v, "digests": ds} for v, ds in carried]))
        cvss = row[ls.S_CVSS]
        head = dumps({
            "package": row[ls.PACKAGE], "installed": installed,
            "fixed": row[ls.FIX] or row[ls.S_FIX] or None, "vulnerability": cve,
            "severity": label[level], "cvss_v3": None if cvss is None else float(cvss),
            "cvss_vector": row[ls.S_VECTOR] or None, "registry": row[ls.REGISTRY],
            "project": row[ls.PROJECT], "repository": row[ls.REPOSITORY]})
        timed = times(row)
        why = (bool(row[ls.IGNORED]), row[ls.REASON] or "")
        ignored = ignores.get(why)
        if ignored is None:
            ignored = ignores[why] = dumps({"ignored": why[0],
                                           "ignore_reason": why[1] or None})[1:-1]
        exploited = not_exploited
        if cve in kev or (epss is not None and epss.get(cve) is not None):
            exploited = exploits.get(cve)  # type: ignore[assignment]
            if exploited is None:
                if len(exploits) >= _CACHED:
                    exploits.clear()
                exploited = exploits[cve] = dumps(cmd.exploit_fields(cve, intel))[1:-1]
        vex = no_vex
        if note is not None:
            vex = dumps({"vex": note(ls.head_key(row)) or None})[1:]
        data = b"".join((head[:-1], b',"tags":', row[ls.S_TAGS].encode(), b",", held, b",",
                         timed, b",", ignored, b",", exploited, b",", vex))
        if not data.isascii():  # the standard encoder escapes it: the record as before
            return general(ls.finding_row(row))
        return data

    return encode


T = TypeVar("T")


def _times(now: datetime, sla_for: Any, kev: Mapping[str, Any], shape: Callable[[dict[str, Any]], T]
           ) -> Callable[[ls.Lean], T]:
    """A lean row's times (``findings.when``) in ``shape``, worked out once per distinct
    (first seen, opened, severity, and the CVE where KEV lists it: its due date)."""
    from daemon.commands import findings as cmd

    cache: dict[tuple[Any, ...], T] = {}

    def timed(row: ls.Lean) -> T:
        cve, level = row[ls.VULNERABILITY], row[ls.SEVERITY]
        key = (row[ls.FIRST_SEEN], row[ls.OPENED], level, cve if cve in kev else None)
        found = cache.get(key)
        if found is None:
            if len(cache) >= _CACHED:
                cache.clear()
            found = cache[key] = shape(cmd.when(as_utc(key[0]), as_utc(key[1]),
                                                _SEVERITY[level], cve, now, sla_for))
        return found
    return timed


def table_records(rows: Iterable[ls.Lean | FindingRow], general: Callable[[FindingRow],
                  dict[str, Any]], now: datetime, sla_for: Any, intel: Any
                  ) -> Iterator[dict[str, Any]]:
    """Each row as the fields of ``findings._record``'s record that the table shows and
    counts (``findings._cells``, ``findings._table``), with the same values; ``general``:
    the whole record of a row that is not lean."""

    kev = intel.kev if intel is not None else {}
    times = _times(now, sla_for, kev, lambda fields: fields)
    label = _LABEL
    for row in rows:
        if isinstance(row, FindingRow):
            yield general(row)
            continue
        cve, level = row[ls.VULNERABILITY], row[ls.SEVERITY]
        timed = times(row)
        tags = row[ls.S_TAGS]
        yield {"package": row[ls.PACKAGE], "installed": ", ".join(versions(row[ls.S_CARRIERS])),
               "fixed": row[ls.FIX] or row[ls.S_FIX] or None, "vulnerability": cve,
               "kev": cve in kev, "severity": label[level], "ignored": bool(row[ls.IGNORED]),
               "registry": row[ls.REGISTRY], "project": row[ls.PROJECT],
               "repository": row[ls.REPOSITORY],
               "tags": [] if tags == "[]" else orjson.loads(tags),
               "age_days": timed["age_days"], "sla": timed["sla"]}
