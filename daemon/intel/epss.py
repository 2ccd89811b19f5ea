"""FIRST's daily EPSS file: ``#model_version:…,score_date:…``, then ``cve,epss,percentile``
and one row per scored CVE (≈300,000). Pure; validated as it is read.

A gzip body is recognised by its magic bytes, so a URL ending ``.csv.gz`` and a local plain
``.csv`` both work. Rows are parsed with the stdlib ``csv`` reader (C) into two float arrays
indexed by CVE: the whole file stays well under 100 MB (``bench/bench_epss.py``).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from array import array
from dataclasses import dataclass

from daemon.errors import FeedInvalid

HEADER = ["cve", "epss", "percentile"]
_CVE = re.compile(r"CVE-\d{4}-\d{4,19}")


@dataclass(frozen=True, slots=True)
class EpssScores:
    model_version: str
    score_date: str
    index: dict[str, int]  # CVE -> row
    epss: array[float]
    percentile: array[float]

    def get(self, cve: str) -> tuple[float, float] | None:
        row = self.index.get(cve)
        return None if row is None else (self.epss[row], self.percentile[row])

    def __len__(self) -> int:
        return len(self.index)


def _meta(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in line.lstrip("#").strip().split(","):
        key, _, value = part.partition(":")
        out[key.strip()] = value.strip()
    return out


def parse(data: bytes, where: str) -> EpssScores:
    """The scores in ``data`` (gzip or plain); ``FeedInvalid`` naming ``where`` and the line
    for a bad header, a malformed CVE, a score outside 0–1, or a duplicate."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise FeedInvalid(f"{where}: not a gzip file: {exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FeedInvalid(f"{where}: not UTF-8 text") from None
    lines = io.StringIO(text)
    first = lines.readline()
    meta = _meta(first) if first.startswith("#") else {}
    if not first.startswith("#"):
        lines.seek(0)
    reader = csv.reader(lines)
    header = next(reader, None)
    if header != HEADER:
        raise FeedInvalid(f"{where}: not an EPSS file: header is {header!r}, "
                          f"expected {','.join(HEADER)}")
    index: dict[str, int] = {}
    epss: array[float] = array("d")
    pct: array[float] = array("d")
    for n, row in enumerate(reader):
        line = n + (3 if meta else 2)
        try:
            cve, score, percentile = row
            s, p = float(score), float(percentile)
        except ValueError:
            raise FeedInvalid(f"{where}: line {line}: not cve,epss,percentile") from None
        if not (0.0 <= s <= 1.0 and 0.0 <= p <= 1.0) or math.isnan(s) or math.isnan(p):
            raise FeedInvalid(f"{where}: line {line}: score or percentile outside 0-1")
        if not _CVE.fullmatch(cve):
            raise FeedInvalid(f"{where}: line {line}: {cve[:40]!r} is not a CVE id")
        if cve in index:
            raise FeedInvalid(f"{where}: line {line}: {cve} appears twice")
        index[cve] = len(epss)
        epss.append(s)
        pct.append(p)
    if not index:
        raise FeedInvalid(f"{where}: not an EPSS file: no rows")
    return EpssScores(meta.get("model_version", ""), meta.get("score_date", ""), index, epss, pct)


def crossings(before: EpssScores | None, after: EpssScores, cves: set[str],
              threshold: float, *, by_percentile: bool = False) -> list[str]:
    """The CVEs of ``cves`` whose score (or percentile) reaches ``threshold`` in ``after`` and
    was below it (or unscored) in ``before``; none on a first fetch (a baseline)."""
    if before is None:
        return []
    column = 1 if by_percentile else 0
    out = []
    for cve in sorted(cves):
        now = after.get(cve)
        if now is None or now[column] < threshold:
            continue
        was = before.get(cve)
        if was is None or was[column] < threshold:
            out.append(cve)
    return out
