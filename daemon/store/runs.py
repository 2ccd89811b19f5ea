"""The schedule runs as recorded (``schedule_run``), newest first, for `scanwatch runs`."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Engine

from daemon.store import tables as t
from daemon.store.queries import RunRow


def _select() -> Select[Any]:
    c, s = t.schedule_run.c, t.run_summary.c
    return (select(c.id, c.schedule, c.started_at, c.finished_at, c.result, c.detail,
                   func.coalesce(s.summary, ""))
            .outerjoin(t.run_summary, s.run_id == c.id))


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


def record_summary(engine: Engine, run_id: int, summary: dict[str, Any]) -> None:
    """Keep what the run did (a JSON object) with its row."""
    with engine.begin() as conn:
        conn.execute(t.run_summary.insert().values(
            run_id=run_id, summary=json.dumps(summary, sort_keys=True)))


def summary_of(row: RunRow) -> dict[str, Any] | None:
    """The run's summary, None for a run recorded without one."""
    if not row.summary:
        return None
    value = json.loads(row.summary)
    return value if isinstance(value, dict) else None
