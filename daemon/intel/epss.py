"""FIRST's daily EPSS file: ``#model_version:…,score_date:…``, then ``cve,epss,percentile``
and one row per scored CVE (≈300,000). Pure; validated as it is read.

A gzip body is recognised by its magic bytes, so a URL ending ``.csv.gz`` and a local plain
``.csv`` both work. Rows become two float arrays indexed by CVE, checked column by column: the
whole file parses in well under 2 s and 100 MB (``bench/epss.py``). FIRST's file has no quoted
fields, so a line is split on its commas.
"""

from __future__ import annotations

import gzip
import math
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from daemon.errors import FeedInvalid

HEADER = ["cve", "epss", "percentile"]
_CVE = re.compile(r"CVE-\d{4}-\d{4,19}")
_CVES = re.compile(r"(?:CVE-\d{4}-\d{4,19}\n)+")


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
    for a bad header, a malformed row or CVE id, a score outside 0–1, or a duplicate.

    The checks run over whole columns (one regex pass over the ids, C-level min/max/fsum over
    the scores); only a file that fails them is walked row by row to name the line."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise FeedInvalid(f"{where}: not a gzip file: {exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FeedInvalid(f"{where}: not UTF-8 text") from None
    del data
    lines = text.splitlines()
    del text
    meta = _meta(lines[0]) if lines and lines[0].startswith("#") else {}
    first = 1 if meta else 0  # index of the header line
    header = lines[first].split(",") if len(lines) > first else None
    if header != HEADER:
        raise FeedInvalid(f"{where}: not an EPSS file: header is {repr(header)[:80]}, "
                          f"expected {','.join(HEADER)}")
    body = lines[first + 1:]
    del lines
    while body and not body[-1]:
        body.pop()
    if not body:
        raise FeedInvalid(f"{where}: not an EPSS file: no rows")
    # One flat split (no list per row): every third field is an id, a score, a percentile.
    # A line with too few or too many fields shifts the columns, which the checks then catch;
    # the slow path walks the lines to name the first bad one.
    flat = ",".join(body).split(",")
    if len(flat) != 3 * len(body):
        _bad_row(body, first, where, lambda r: r.count(",") != 2, "not cve,epss,percentile")
    cves, scores, pcts = flat[0::3], flat[1::3], flat[2::3]
    del flat
    try:
        epss, pct = array("d", map(float, scores)), array("d", map(float, pcts))
    except ValueError:
        _bad_row(body, first, where, lambda r: not _row_ok(r), "not cve,epss,percentile")
    del scores, pcts
    for column in (epss, pct):
        if math.isnan(math.fsum(column)) or min(column) < 0.0 or max(column) > 1.0:
            _bad_row(body, first, where, lambda r: not _row_ok(r),
                     "score or percentile outside 0-1")
    if not _CVES.fullmatch("\n".join(cves) + "\n"):
        _bad_row(body, first, where, lambda r: not _row_ok(r), "not a CVE id")
    index = dict(zip(cves, range(len(cves)), strict=True))
    if len(index) != len(cves):
        seen: set[str] = set()
        for n, cve in enumerate(cves):
            if cve in seen:
                raise FeedInvalid(f"{where}: line {n + first + 2}: {cve} appears twice")
            seen.add(cve)
    return EpssScores(meta.get("model_version", ""), meta.get("score_date", ""), index, epss,
                      pct)


def _row_ok(line: str) -> bool:
    parts = line.split(",")
    if len(parts) != 3 or not _CVE.fullmatch(parts[0]):
        return False
    try:
        s, p = float(parts[1]), float(parts[2])
    except ValueError:
        return False
    return 0.0 <= s <= 1.0 and 0.0 <= p <= 1.0


def _bad_row(lines: list[str], first: int, where: str, bad: Callable[[str], bool], what: str
             ) -> NoReturn:
    for n, line in enumerate(lines):
        if bad(line):
            raise FeedInvalid(f"{where}: line {n + first + 2}: {what}")
    raise FeedInvalid(f"{where}: {what}")  # not reached: the column check found one


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
