"""Findings that change without a scan: images that left (``image_removed``, or superseded by a
scanned rebuild: ``fixed_by_rebuild``) and ignore rules that expired (back to open)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Row

from daemon import log
from daemon.model import ArtifactRef, ChangeEvent, ChangeKind, FindingKey, Reason, Severity
from daemon.store import statements as q
from daemon.store import tables as t
from daemon.store.batch import _Pending, _Target
from daemon.store.history import HistoryMixin
from daemon.store.ignores import ignore_reason

_log = log.get(__name__)


class ResolveMixin(HistoryMixin):
    def resolve_removed(
        self, registry: str, removed: Sequence[ArtifactRef | str], now: datetime
    ) -> list[ChangeEvent]:
        """Stop counting artifacts the inventory no longer lists (or no longer tags); findings
        that no other counting artifact of their repository carries are fixed."""
        wanted = {r.digest if isinstance(r, ArtifactRef) else r for r in removed}
        exact = {(r.project, r.repository, r.digest) for r in removed if isinstance(r, ArtifactRef)}
        if not wanted:
            return []
        a, r, tg = t.artifact.c, t.repository.c, t.tag.c
        events: list[ChangeEvent] = []
        with self.engine.begin() as conn:
            reg_id = self._registry_id(conn, registry, now, create=False)
            if reg_id is None:
                return []
            tagged = select(tg.id).where(tg.artifact_id == a.id, tg.until.is_(None)).exists()
            rows = conn.execute(
                select(a.id, a.digest, a.content_id, a.removed_at, a.repository_id,
                       r.project, r.name)
                .join(t.repository, r.id == a.repository_id)
                .where(r.registry_id == reg_id, a.digest.in_(sorted(wanted)),
                       a.counting.is_(True), a.content_id.is_not(None),
                       a.removed_at.is_not(None) | ~tagged)).all()
            plain = {r for r in removed if isinstance(r, str)}
            rows = [row for row in rows
                    if row.digest in plain or (row.project, row.name, row.digest) in exact]
            by_repo: dict[int, list[Any]] = defaultdict(list)
            for row in rows:
                by_repo[row.repository_id].append(row)
            for repo_id, gone in by_repo.items():
                events.extend(self._retire(conn, registry, repo_id, gone, now))
        if events:
            _log.info("findings_resolved", registry=registry, count=len(events))
        return events

    def _retire(
        self, conn: Connection, registry: str, repo_id: int, gone: list[Row[Any]], now: datetime
    ) -> list[ChangeEvent]:
        ids = {row.id for row in gone}
        conn.execute(q.UNCOUNT_ARTIFACTS, {"ids": sorted(ids)})
        dropped = set().union(*(self._content_keys(conn, row.content_id) for row in gone))
        carried = self._carried_keys(conn, repo_id, ids, dropped)
        findings = self._findings(conn, repo_id)
        tg = t.tag.c
        moved = set()
        for row in gone:
            if row.removed_at is None:
                # its tags moved on: the rebuild that took them (already scanned) dropped it
                names = select(tg.name).where(tg.artifact_id == row.id)
                taken = conn.execute(select(tg.id).where(
                    tg.repository_id == repo_id, tg.until.is_(None), tg.name.in_(names))).first()
                if taken is not None:
                    moved.add(row.id)
        reasons: dict[tuple[str, str], tuple[Reason, list[str]]] = {}
        for row in gone:
            reason = Reason.FIXED_BY_REBUILD if row.id in moved else Reason.IMAGE_REMOVED
            for key in self._content_keys(conn, row.content_id) - carried:
                entry = reasons.setdefault(key, (reason, []))
                if row.digest not in entry[1]:
                    entry[1].append(row.digest)
        pending: list[_Pending] = []
        updates: list[dict[str, Any]] = []
        for key, (reason, digests) in sorted(reasons.items()):
            f = findings.get(key)
            if f is None or f.resolved:
                continue
            updates.append({"_id": f.id, "severity": f.severity, "fix_version": f.fix_version,
                            "installed_versions": f.installed_versions, "last_seen": now,
                            "opened_at": None, "resolved_at": now,
                            "resolved_reason": reason.value})
            pending.append(_Pending(ChangeKind.FIXED, reason, key, Severity(f.severity),
                                    f.installed_versions, f.fix_version,
                                    digests=tuple(digests), ignored=f.ignored))
        self._write_findings(conn, [], updates)
        project, name = gone[0].project, gone[0].name
        return self._store_events(conn, _Target(registry, project, name, repo_id), pending,
                                  None, now, need_ids=False, findings=findings)

    def refresh_ignores(self, now: datetime, registry: str | None = None) -> list[ChangeEvent]:
        """Re-apply the ignore rules and allowlists (``set_ignores``) to open findings at ``now``.

        Findings whose rule expired come back: ignored is cleared and a ``reopened`` event with
        reason ``ignore_expired`` is recorded (and returned) so that alerts treat them as open.
        """
        f, r, g = t.finding.c, t.repository.c, t.registry.c
        query = (select(f.id, f.vulnerability, f.package, f.severity, f.fix_version,
                        f.installed_versions, f.ignored, f.ignore_reason, f.repository_id,
                        r.project, r.name, g.name.label("registry"))
                 .join(t.repository, r.id == f.repository_id)
                 .join(t.registry, g.id == r.registry_id)
                 .where(f.resolved_at.is_(None)))
        if registry is not None:
            query = query.where(g.name == registry)
        events: list[ChangeEvent] = []
        with self.engine.begin() as conn:
            changes: list[dict[str, Any]] = []
            back: dict[int, list[tuple[Any, _Pending]]] = defaultdict(list)
            for row in conn.execute(query):
                key = FindingKey(row.registry, row.project, row.name, row.vulnerability,
                                 row.package)
                why = ignore_reason(key, self.ignores, self.allowlists, now)
                if bool(why) == row.ignored and why == row.ignore_reason:
                    continue
                changes.append({"_id": row.id, "ignored": bool(why), "ignore_reason": why})
                if row.ignored and not why:
                    back[row.repository_id].append((row, _Pending(
                        ChangeKind.REOPENED, Reason.IGNORE_EXPIRED,
                        (row.vulnerability, row.package), Severity(row.severity),
                        row.installed_versions, row.fix_version)))
            if changes:
                conn.execute(update(t.finding).where(f.id == bindparam("_id")).values(
                    ignored=bindparam("ignored"), ignore_reason=bindparam("ignore_reason")),
                    changes)
            for repo_id, items in back.items():
                first = items[0][0]
                target = _Target(first.registry, first.project, first.name, repo_id)
                findings = {(row.vulnerability, row.package): row for row, _ in items}
                events.extend(self._store_events(conn, target, [p for _, p in items], None, now,
                                                 need_ids=False, findings=findings))
        return events
