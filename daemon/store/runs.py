"""The runs aggregate: schedule runs as recorded (``schedule_run``): started, finished, the
latest of a schedule (for ``on_missed``), and newest first for `scanwatch runs`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection, Engine

from daemon.store import tables as t


@dataclass(frozen=True)
class RunRow:
    id: int
    schedule: str
    started_at: datetime
    finished_at: datetime | None
    result: str
    detail: str = ""
    summary: str = ""  # JSON (``record_summary``), "" for runs recorded before it


def _select() -> Select[Any]:
    c, s = t.schedule_run.c, t.run_summary.c
    return (select(c.id, c.schedule, c.started_at, c.finished_at, c.result, c.detail,
                   func.coalesce(s.summary, ""))
            .outerjoin(t.run_summary, s.run_id == c.id))


def record_run_start(conn: Connection, schedule: str, now: datetime) -> int:
    result = conn.execute(t.schedule_run.insert().values(
        schedule=schedule, started_at=now, finished_at=None, result="running", detail=""))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def record_run_finish(conn: Connection, run_id: int, now: datetime, result: str,
                      detail: str = "") -> None:
    conn.execute(t.schedule_run.update().where(t.schedule_run.c.id == run_id).values(
        finished_at=now, result=result, detail=detail))


def last_run(conn: Connection, schedule: str) -> RunRow | None:
    """The latest run of ``schedule`` (started, finished or not), for ``on_missed``."""
    c = t.schedule_run.c
    row = conn.execute(select(c.id, c.schedule, c.started_at, c.finished_at, c.result,
                              c.detail).where(c.schedule == schedule)
                       .order_by(c.started_at.desc(), c.id.desc()).limit(1)).first()
    return None if row is None else RunRow(*row)


def recent(engine: Engine, *, schedule: str | None = None, per_schedule: int = 10) -> list[RunRow]:
    """The last ``per_schedule`` runs of each schedule (or of the one named), newest first."""
    c = t.schedule_run.c
    query = _select()
    if schedule:
        query = query.where(c.schedule == schedule)
    with engine.connect() as conn:
        rows = [RunRow(*r) for r in conn.execute(query.order_by(c.started_at.desc(),
                                                               c.id.desc()))]
    kept: list[RunRow] = []
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.schedule] = counts.get(row.schedule, 0) + 1
        if counts[row.schedule] <= per_schedule:
            kept.append(row)
    return kept


def one(engine: Engine, run_id: int) -> RunRow | None:
    c = t.schedule_run.c
    with engine.connect() as conn:
        row = conn.execute(_select().where(c.id == run_id)).first()
    return None if row is None else RunRow(*row)


def record_summary(conn: Connection, run_id: int, summary: dict[str, Any]) -> None:
    """Keep what the run did (a JSON object) with its row."""
    conn.execute(t.run_summary.insert().values(
        run_id=run_id, summary=json.dumps(summary, sort_keys=True)))


def summary_of(row: RunRow) -> dict[str, Any] | None:
    """The run's summary, None for a run recorded without one."""
    if not row.summary:
        return None
    value = json.loads(row.summary)
    return value if isinstance(value, dict) else None


def latest_coverage(conn: Connection, registries: list[str],
                    scan_back: int = 200) -> dict[str, tuple[datetime, dict[str, Any]]]:
    """Per registry, the coverage the newest run that measured it recorded (its finish time
    and ``RegistryRun.coverage_record``), read from the last ``scan_back`` summaries."""
    c, s = t.schedule_run.c, t.run_summary.c
    rows = conn.execute(select(c.finished_at, s.summary)
                        .join(t.run_summary, s.run_id == c.id)
                        .where(c.finished_at.is_not(None))
                        .order_by(c.finished_at.desc(), c.id.desc()).limit(scan_back))
    found: dict[str, tuple[datetime, dict[str, Any]]] = {}
    for finished, text in rows:
        value = json.loads(text)
        coverage = value.get("coverage") if isinstance(value, dict) else None
        for name, record in (coverage or {}).items():
            if name in registries and name not in found and isinstance(record, dict):
                found[name] = (finished, record)
        if len(found) == len(registries):
            break
    return found
