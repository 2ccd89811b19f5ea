"""The registry-wide listing read lean: every open finding with its carriers' summary as plain
tuples, for ``findings --format json`` / ``jsonl`` (issue 11).

``findings.ordered`` builds a ``FindingHead`` and a ``FindingRow`` for each finding, decoding
its summary's JSON into tuples of strings that the command then encodes back into JSON: at
100,000 artifacts that was most of a listing's time. Here one statement reads, in output order
(a walk of ``ix_finding_order``), each finding row with its summary (``carrier_summary``) and its
repository's mark (``carrier_dirty``), one snapshot as ``carrier_summary.read`` has them, and
yields the driver's tuple as it is (``LEAN``'s columns), the summary's JSON text untouched for
the command to splice into its output. A finding whose summary cannot be used (its repository
marked, or one JSON could not hold) is read from its carriers as ``findings.with_carriers``
reads it, a chunk at a time, and yielded as the ``FindingRow`` that gives; so is one no
counting image carries now. Ignore rules apply as ``findings`` applies them, at ``now``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select

from daemon.ignores import IgnoreRules
from daemon.model import FindingKey
from daemon.store import carrier_summary as cs
from daemon.store import findings
from daemon.store import tables as t
from daemon.store.base import driver_rows
from daemon.store.carriers import Summary
from daemon.store.findings import FindingHead, FindingQuery, FindingRow

_CHUNK = 2000  # rows held while the live ones among them are read from their carriers

# A lean row: ``findings``' head columns (id, repository id, vulnerability, package, severity,
# fix version, installed versions, first seen, opened at, last seen, ignored, ignore reason,
# project, repository, registry), then the summary's (fix, carriers JSON, tags JSON,
# ecosystem, CVSS v3, vector; None: no summary row) and the repository's mark (None: none).
# The ignored flag and reason are as the rules say at ``now``.
ID, REPOSITORY_ID, VULNERABILITY, PACKAGE, SEVERITY, FIX, INSTALLED, FIRST_SEEN, OPENED, \
    LAST_SEEN, IGNORED, REASON, PROJECT, REPOSITORY, REGISTRY, S_FIX, S_CARRIERS, S_TAGS, \
    S_ECOSYSTEM, S_CVSS, S_VECTOR, MARK = range(22)
Lean = tuple[Any, ...]

_s, _d, _f = cs.carrier_summary.c, cs.carrier_dirty.c, t.finding.c


def statement(query: FindingQuery, rules: IgnoreRules | None, kev: bool | None) -> Any:
    """``findings.in_order``'s statement with each finding's summary and mark."""
    return (findings.in_order(query, rules, kev)
            .add_columns(_s.fix, _s.carriers, _s.tags, _s.ecosystem, _s.cvss_v3, _s.cvss_vector,
                         _d.version)
            .outerjoin(cs.carrier_summary, _s.finding_id == _f.id)
            .outerjoin(cs.carrier_dirty, _d.repository_id == _f.repository_id))


def rows(conn: Any, query: FindingQuery, *, rules: IgnoreRules | None, now: datetime
         ) -> Iterator[Lean | FindingRow]:
    """Every matching finding in output order (``findings.heads_in_order``'s, the KEV ones
    first where a KEV copy is in force): a lean row where its summary holds, else the
    ``FindingRow`` ``findings.with_carriers`` gives."""
    parts: list[bool | None] = [None]
    if conn.execute(select(t.intel_kev.c.cve).limit(1)).first() is not None:
        parts = [True, False]
    for kev in parts:
        chunk: list[Lean] = []
        for row in _ruled(driver_rows(conn, statement(query, rules, kev)), query, rules, now):
            chunk.append(row)
            if len(chunk) >= _CHUNK:
                yield from _resolved(conn, chunk)
                chunk = []
        yield from _resolved(conn, chunk)


def _ruled(rows: Iterator[Any], query: FindingQuery, rules: IgnoreRules | None,
           now: datetime) -> Iterator[Lean]:
    """``rows`` with ignored and reason as ``rules`` say at ``now`` (``findings._heads``)."""
    if rules is None:  # the stored flag (the statement filtered on it unless asked for all)
        yield from rows
        return
    if not rules:  # no rule in force: nothing is ignored (whatever the stored flag says)
        for row in rows:
            yield (*row[:IGNORED], False, "", *row[PROJECT:]) if row[IGNORED] or row[REASON] \
                else row
        return
    for row in rows:
        why = ""
        if rules.may_match(row[VULNERABILITY], row[PACKAGE]):
            why = rules.reason(head_key(row), now)
            if why and not query.include_ignored:
                continue
        yield (*row[:IGNORED], bool(why), why, *row[PROJECT:])


def _resolved(conn: Any, chunk: list[Lean]) -> Iterator[Lean | FindingRow]:
    """``chunk`` with each row whose summary cannot be used read as a ``FindingRow``."""
    kept = [usable(r) for r in chunk]
    if all(kept):
        yield from chunk
        return
    read = iter(findings.with_carriers(conn, [head(r) for r, k in zip(chunk, kept, strict=True)
                                              if not k]))
    for r, k in zip(chunk, kept, strict=True):
        yield r if k else next(read)


def usable(row: Lean) -> bool:
    """Whether ``row``'s summary is the one to show (not marked, and a summary JSON holds)."""
    return row[MARK] is None and bool(row[S_CARRIERS])


def head_key(row: Lean) -> FindingKey:
    return FindingKey(row[REGISTRY], row[PROJECT], row[REPOSITORY], row[VULNERABILITY],
                      row[PACKAGE])


def head(row: Lean) -> FindingHead:
    """The ``FindingHead`` of a lean row."""
    return findings.head_of(row[:S_FIX])


def summary(row: Lean) -> Summary:
    """The summary of a usable lean row, decoded."""
    decoded = cs.decoded(row[S_FIX], row[S_CARRIERS], row[S_TAGS], row[S_ECOSYSTEM],
                         row[S_CVSS], row[S_VECTOR], None)
    assert isinstance(decoded, Summary)
    return decoded


def finding_row(row: Lean) -> FindingRow:
    """A usable lean row as ``findings.with_carriers`` would give it."""
    return findings.summarised(head(row), summary(row))
