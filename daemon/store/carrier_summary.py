"""Each finding's carriers summarised once, kept by the writer (issue 11).

A listing shows, for each open finding, what the counting images of its repository that carry
it say: the installed versions with the digests carrying each, their lowest listed fix, the
first ecosystem, the highest CVSS v3 score and vector, the images' open tags
(``carriers.summarise``). Read from ``content_finding`` ⋈ ``artifact`` that is about eight
rows per finding at 100,000 artifacts; ``carrier_summary`` (migration 23) holds the summary as
one row per finding carried now, keyed by the finding's id: a listing reads the finding rows
in order as before, then each chunk's summaries by primary key (``read``).

Never stale: every change to what the summary is made of (an artifact inserted, deleted, or
its content, counting flag, repository or digest changed; a tag opened, closed, moved or
deleted) fires a trigger, in the writer's own transaction, that bumps its repository's
counter in ``carrier_dirty``. Whatever the writer path, raw SQL included, nothing can change a
carrier without marking it. A listing reads each finding's summary and its repository's mark
in the same statement (one snapshot): a marked repository's findings are read from their
carriers as before (``carriers.carried``), the others from their summary row, where no row
means that no counting image carries the finding. (The finding rows come from an earlier
statement, as they did before, when the carriers too were read after them.)

``refresh`` rebuilds the marked repositories a batch at a time, each batch one transaction,
and clears a mark only if its counter is still the one read: a change committed meanwhile
keeps its repository marked for the next refresh. An unchanged rerun leaves nothing marked,
so refreshing costs one empty read. The writer refreshes after each run
(``Store.record_run_finish``); the migration builds every repository once.

What depends on the clock or on the rules (age, SLA, ignored, KEV, EPSS) is not kept here:
the listing computes it at read time, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import orjson
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, and_, bindparam, select
from sqlalchemy.engine import Connection

from daemon.store import carriers
from daemon.store import statements as q
from daemon.store import tables as t
from daemon.store.base import driver_rows
from daemon.store.carriers import Summary

_md = MetaData()  # the latest shape; migration 23 creates it
carrier_summary = Table(
    "carrier_summary", _md,
    # the finding's row (one per repository, vulnerability and package, kept when resolved):
    # the listing's join is a search of this primary key
    Column("finding_id", Integer(), primary_key=True, autoincrement=False),
    Column("repository_id", Integer(), nullable=False, index=True),
    Column("fix", String(), nullable=False),  # the lowest fix the carriers list ("": none)
    # [[version, [digest, ...]], ...] by version, digests sorted; "": read from the carriers
    Column("carriers", String(), nullable=False),
    Column("tags", String(), nullable=False),  # the carriers' open tags, sorted (JSON list)
    Column("ecosystem", String(), nullable=False),
    Column("cvss_v3", Float(), nullable=True),
    Column("cvss_vector", String(), nullable=False),
)
carrier_dirty = Table(
    "carrier_dirty", _md,
    Column("repository_id", Integer(), primary_key=True, autoincrement=False),
    Column("version", Integer(), nullable=False),  # bumped by each change (the triggers)
)
BATCH = 20  # repositories rebuilt per transaction
READ_LIVE = ""  # a summary JSON cannot hold (a lone surrogate): read from the carriers

Begin = Callable[[], AbstractContextManager[Connection]]


def refresh(begin: Begin, batch: int = BATCH) -> int:
    """Rebuild the summaries of every marked repository, ``batch`` repositories per
    transaction (``begin()``: a connection in a new one); how many were rebuilt. Marked
    again while rebuilt, a repository stays marked (counted again next time)."""
    d = carrier_dirty.c
    done, after = 0, -1
    while True:
        with begin() as conn:
            marks = conn.execute(select(d.repository_id, d.version)
                                 .where(d.repository_id > after)
                                 .order_by(d.repository_id).limit(batch)).all()
            if not marks:
                return done
            rebuild(conn, [int(r) for r, _ in marks])
            for repository, version in marks:
                conn.execute(carrier_dirty.delete().where(
                    and_(d.repository_id == repository, d.version == version)))
        done += len(marks)
        after = int(marks[-1][0])


def rebuild(conn: Connection, repositories: Sequence[int]) -> None:
    """The summary rows of ``repositories`` anew from their counting images' carriers (those
    with a finding row: what a listing can show)."""
    s, f = carrier_summary.c, t.finding.c
    wanted = list(repositories)
    conn.execute(carrier_summary.delete().where(s.repository_id.in_(wanted)))
    ids = {(r, v, p): i for i, r, v, p in driver_rows(conn, select(
        f.id, f.repository_id, f.vulnerability, f.package).where(f.repository_id.in_(wanted)))}
    rows = []
    for key, seen in carriers.of_repositories(conn, wanted).items():
        finding = ids.get(key)
        if finding is not None:
            rows.append(_stored(finding, key, carriers.summarise(seen)))
    q.bulk_insert(conn, carrier_summary, rows)


def _stored(finding: int, key: tuple[int, str, str], summary: Summary) -> dict[str, Any]:
    try:
        encoded = orjson.dumps(summary.carriers).decode()
        tags = orjson.dumps(summary.tags).decode()
    except orjson.JSONEncodeError:
        encoded, tags = READ_LIVE, "[]"
    return {"finding_id": finding, "repository_id": key[0],
            "fix": summary.fix, "carriers": encoded, "tags": tags,
            "ecosystem": summary.ecosystem, "cvss_v3": summary.cvss_v3,
            "cvss_vector": summary.cvss_vector}


_READ = 2000  # findings whose summaries are read per statement
# Each finding's summary and its repository's mark, read in one statement (one snapshot): a
# summary is used only where its repository is not marked.
_s, _d, _f = carrier_summary.c, carrier_dirty.c, t.finding.c
_OF_FINDINGS = (select(_f.id, _s.fix, _s.carriers, _s.tags, _s.ecosystem, _s.cvss_v3,
                       _s.cvss_vector, _d.version)
                .select_from(t.finding)
                .outerjoin(carrier_summary, _s.finding_id == _f.id)
                .outerjoin(carrier_dirty, _d.repository_id == _f.repository_id)
                .where(_f.id.in_(bindparam("findings", expanding=True))))


def read(conn: Connection, findings: Sequence[int]) -> dict[int, Summary | str | None]:
    """Each finding's carriers as kept (``decoded``: a Summary, ``NOT_CARRIED`` or
    ``LIVE``); a finding missing from the answer (its row deleted meanwhile) is LIVE."""
    out: dict[int, Summary | str | None] = {}
    wanted = sorted(set(findings))
    for start in range(0, len(wanted), _READ):
        for id_, *kept in driver_rows(conn, _OF_FINDINGS,
                                      {"findings": wanted[start:start + _READ]}):
            out[id_] = decoded(*kept)
    return out


NOT_CARRIED = None  # a summary's place for a finding no counting image carries now
LIVE = "live"  # for one whose carriers must be read (its repository marked, or no summary)


def decoded(fix: str | None, encoded: str | None, tags: str | None, ecosystem: str | None,
            cvss_v3: float | None, cvss_vector: str | None, marked: int | None
            ) -> Summary | str | None:
    """A summary as read with its repository's mark: a ``Summary``, ``NOT_CARRIED`` (no
    row: no counting image carries it) or ``LIVE`` (marked: read its carriers)."""
    if marked is not None:
        return LIVE
    if encoded is None:
        return NOT_CARRIED
    if encoded == READ_LIVE:
        return LIVE
    held = tuple([(v, tuple(ds)) for v, ds in orjson.loads(encoded)])
    digests = held[0][1] if len(held) == 1 else tuple(sorted({d for _, ds in held for d in ds}))
    names = () if tags == "[]" else tuple(orjson.loads(tags or "[]"))
    return Summary(fix or "", held, digests, names,
                   ecosystem or "", None if cvss_v3 is None else float(cvss_v3),
                   cvss_vector or "")


def one_version(encoded: bytes) -> tuple[bytes, bytes] | None:
    """The JSON of the one installed version and of its digests in ``encoded`` (a summary's
    carriers, as stored: ``[["version",["digest", ...]]]``), or None where it holds several
    versions (or a digest with a bracket, or a version with an escape): without decoding
    each digest. A JSON string never holds ``",["`` with its quote unescaped, so in a version
    without a backslash the first one ends it (``1.0",[`` is ``"1.0\\",["``: not its end)."""
    end = encoded.find(b'",["', 3)
    digests = encoded[end + 2:-2]
    if end > 0 and encoded.startswith(b'[["') and encoded.endswith(b"]]]") \
            and b"]" not in digests[:-1] and encoded.find(b"\\", 3, end) < 0:
        return encoded[2:end + 1], digests
    return None


def versions(encoded: str) -> list[str]:
    """The installed versions of a summary's carriers as stored."""
    one = one_version(encoded.encode())
    if one is not None:
        return [orjson.loads(one[0])]
    return [v for v, _ in orjson.loads(encoded)]


def marked(conn: Connection) -> Iterator[int]:
    """The repositories whose summaries wait for a refresh."""
    yield from (int(r) for r in conn.execute(select(carrier_dirty.c.repository_id)).scalars())
