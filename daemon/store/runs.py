"""The schedule runs as recorded (``schedule_run``), newest first, for `scanwatch runs`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from daemon.store import tables as t
from daemon.store.queries import RunRow


def recent(engine: Engine, *, schedule: str | None = None, per_schedule: int = 10) -> list[RunRow]:
    """The last ``per_schedule`` runs of each schedule (or of the one named), newest first."""
    c = t.schedule_run.c
    query = select(c.id, c.schedule, c.started_at, c.finished_at, c.result, c.detail)
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
        row = conn.execute(select(c.id, c.schedule, c.started_at, c.finished_at, c.result,
                                  c.detail).where(c.id == run_id)).first()
    return None if row is None else RunRow(*row)
