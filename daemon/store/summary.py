"""What the overview and the open-findings chart show, counted once per state of history.

Each of these reads visits every image or every finding (on 100,000 images, about 0.3 s
each), and their answer changes only when history does. The writer counts them with the
remediation plan after each run (``plan.count``) and keeps them, as JSON, in the plan's state
row (``plan_state.pages``, migration 21) under the history they were counted from; the pages
read that row when it is of the history now (``pages.summary``) and count here otherwise.

Open findings per day are kept as what opened and what resolved each day (per severity), so
any window of days is a sum over a few hundred numbers: a past day's counts never change.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from daemon.model import Severity
from daemon.store import tables as t


@dataclass(frozen=True)
class RegistryOverview:
    name: str
    repositories: int
    artifacts: int
    scanner_db_updated_at: datetime | None
    last_scan_at: datetime | None
    failing: int  # artifacts whose latest scan failed
    open_by_severity: dict[Severity, int]


# severity → ISO day → (findings opened that day, findings resolved that day), not ignored
Days = dict[Severity, dict[str, tuple[int, int]]]


@dataclass(frozen=True)
class Summary:
    registries: list[RegistryOverview]
    days: Days


def registries(conn: Connection) -> list[RegistryOverview]:
    """Each registry's repositories, images, failing images, newest scanner DB and scan, and
    open (not ignored) findings by severity, from five GROUP BYs."""
    g, r, a, s, f = (t.registry.c, t.repository.c, t.artifact.c, t.scan.c, t.finding.c)
    names: dict[int, str] = {int(i): n for i, n in conn.execute(
        select(g.id, g.name).order_by(g.name))}
    repos: dict[int, int] = {int(i): int(n) for i, n in conn.execute(
        select(r.registry_id, func.count()).where(r.removed_at.is_(None))
        .group_by(r.registry_id))}
    arts: dict[int, tuple[int, int]] = {}
    for reg, n, failing in conn.execute(
            select(r.registry_id, func.count(), func.sum(
                case((a.consecutive_failures > 0, 1), else_=0)))
            .join(t.repository, r.id == a.repository_id)
            .where(a.removed_at.is_(None)).group_by(r.registry_id)):
        arts[reg] = (int(n), int(failing or 0))
    scans: dict[int, tuple[Any, Any]] = {}
    for reg, db_at, last_at in conn.execute(
            select(r.registry_id, func.max(s.scanner_db_updated_at), func.max(s.finished_at))
            .join(t.artifact, a.id == s.artifact_id)
            .join(t.repository, r.id == a.repository_id)
            .where(s.id == a.last_success_scan_id).group_by(r.registry_id)):
        scans[reg] = (db_at, last_at)
    # Per repository from ix_finding_open_severity alone, then summed per registry.
    registry_of = {int(i): int(reg) for i, reg in conn.execute(select(r.id, r.registry_id))}
    open_: dict[int, dict[Severity, int]] = defaultdict(lambda: defaultdict(int))
    for repo, sev, n in conn.execute(
            select(f.repository_id, f.severity, func.count())
            .where(f.resolved_at.is_(None), f.ignored.is_(False))
            .group_by(f.repository_id, f.severity)):
        open_[registry_of[int(repo)]][Severity(sev)] += int(n)
    return [RegistryOverview(name, int(repos.get(rid, 0)), arts.get(rid, (0, 0))[0],
                             scans.get(rid, (None, None))[0], scans.get(rid, (None, None))[1],
                             arts.get(rid, (0, 0))[1], dict(open_.get(rid, {})))
            for rid, name in names.items()]


def days(conn: Connection) -> Days:
    """Per severity and UTC day, how many (not ignored) findings opened and resolved: two
    GROUP BYs by day. A finding resolved and opened again counts from its latest opening."""
    f = t.finding.c
    out: dict[Severity, dict[str, list[int]]] = defaultdict(dict)
    for slot, column in ((0, f.opened_at), (1, f.resolved_at)):
        day = func.date(column)
        for sev, on, n in conn.execute(
                select(f.severity, day, func.count())
                .where(column.is_not(None), f.ignored.is_(False))
                .group_by(f.severity, day)):
            counts = out[Severity(sev)].setdefault(str(on)[:10], [0, 0])
            counts[slot] += int(n)
    return {sev: {d: (c[0], c[1]) for d, c in per.items()} for sev, per in out.items()}


def count(conn: Connection) -> Summary:
    return Summary(registries(conn), days(conn))


def _when(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def dumps(summary: Summary) -> str:
    return orjson.dumps({
        "registries": [[r.name, r.repositories, r.artifacts, _when(r.scanner_db_updated_at),
                        _when(r.last_scan_at), r.failing,
                        {int(s): n for s, n in r.open_by_severity.items()}]
                       for r in summary.registries],
        "days": {int(s): per for s, per in summary.days.items()},
    }, option=orjson.OPT_NON_STR_KEYS).decode()


def loads(text: str) -> Summary:
    data = orjson.loads(text)
    regs = [RegistryOverview(name, repos, arts, _at(db_at), _at(last_at), failing,
                             {Severity(int(s)): n for s, n in open_.items()})
            for name, repos, arts, db_at, last_at, failing, open_ in data["registries"]]
    return Summary(regs, {Severity(int(s)): {d: (c[0], c[1]) for d, c in per.items()}
                          for s, per in data["days"].items()})
