"""Findings that change without a scan: images that left the registry or lost their tags, and
ignore rules that changed (``daemon/diff.py`` decides; this loads and writes). Also the Harbor
allowlists as last read, which stay in force until a later read replaces them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Row

from daemon import diff, log
from daemon.diff import StoredFinding
from daemon.ignores import NO_RULES, IgnoreRules
from daemon.model import ArtifactRef, ChangeEvent, CveAllowlist, Severity
from daemon.store import statements as q
from daemon.store import tables as t
from daemon.store.batch import Key, _Target
from daemon.store.history import HistoryMixin

_log = log.get(__name__)


class ResolveMixin(HistoryMixin):
    def resolve_removed(
        self, registry: str, removed: Sequence[ArtifactRef | str], now: datetime,
        rules: IgnoreRules = NO_RULES,
    ) -> list[ChangeEvent]:
        """Stop counting artifacts the inventory no longer lists (or no longer tags); findings
        that no other counting artifact of their repository carries are fixed
        (``diff.retire``)."""
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
                events.extend(self._retire(conn, registry, repo_id, gone, now, rules))
        if events:
            _log.info("findings_resolved", registry=registry, count=len(events))
        return events

    def _retire(
        self, conn: Connection, registry: str, repo_id: int, gone: list[Row[Any]], now: datetime,
        rules: IgnoreRules,
    ) -> list[ChangeEvent]:
        ids = {row.id for row in gone}
        conn.execute(q.UNCOUNT_ARTIFACTS, {"ids": sorted(ids)})
        dropped = set().union(*(self._content_keys(conn, row.content_id) for row in gone))
        carried = self._carried_keys(conn, repo_id, ids, dropped)
        findings = self._findings(conn, repo_id)
        tg = t.tag.c
        departed = []
        for row in gone:
            taken = False
            if row.removed_at is None:
                # still listed but untagged: did its tags move on to another image?
                names = select(tg.name).where(tg.artifact_id == row.id)
                taken = conn.execute(select(tg.id).where(
                    tg.repository_id == repo_id, tg.until.is_(None),
                    tg.name.in_(names))).first() is not None
            departed.append(diff.Departure(row.digest, self._content_keys(conn, row.content_id),
                                           taken))
        target = _Target(registry, gone[0].project, gone[0].name, repo_id)
        outcome = diff.retire(target.repo, departed, findings, carried, rules, now)
        self._write_findings(conn, repo_id, findings, outcome.writes, now)
        return self._store_events(conn, target, outcome.events, None, now, findings=findings)

    def reconcile_ignores(
        self, rules: IgnoreRules, now: datetime, registry: str | None = None
    ) -> list[ChangeEvent]:
        """Bring open findings' ignored marks in line with ``rules`` at ``now``
        (``diff.reconcile_ignores``); return the ``ignore_expired`` events it recorded."""
        f, r, g = t.finding.c, t.repository.c, t.registry.c
        query = (select(f.id, f.vulnerability, f.package, f.severity, f.fix_version,
                        f.installed_versions, f.ignored, f.ignore_reason, f.repository_id,
                        r.project, r.name, g.name.label("registry"))
                 .join(t.repository, r.id == f.repository_id)
                 .join(t.registry, g.id == r.registry_id)
                 .where(f.resolved_at.is_(None)))
        if not rules:
            query = query.where(f.ignored.is_(True))  # only marks to clear
        if registry is not None:
            query = query.where(g.name == registry)
        events: list[ChangeEvent] = []
        with self.engine.begin() as conn:
            by_repo: dict[int, tuple[_Target, dict[Key, StoredFinding]]] = {}
            for row in conn.execute(query):
                entry = by_repo.get(row.repository_id)
                if entry is None:
                    entry = by_repo[row.repository_id] = (
                        _Target(row.registry, row.project, row.name, row.repository_id), {})
                entry[1][(row.vulnerability, row.package)] = StoredFinding(
                    row.id, Severity(row.severity), row.fix_version, row.installed_versions,
                    False, row.ignored, row.ignore_reason)
            for repo_id, (target, findings) in by_repo.items():
                outcome = diff.reconcile_ignores(target.repo, findings, rules, now)
                self._write_findings(conn, repo_id, findings, outcome.writes, now)
                events.extend(self._store_events(conn, target, outcome.events, None, now,
                                                 findings=findings))
        return events

    # --- Harbor allowlists, as last read --------------------------------------------------
    def save_allowlists(
        self, registry: str, allowlists: Sequence[CveAllowlist], now: datetime
    ) -> None:
        """Replace ``registry``'s stored allowlists with a fresh, complete read."""
        al = t.harbor_allowlist.c
        with self.engine.begin() as conn:
            conn.execute(delete(t.harbor_allowlist).where(al.registry_name == registry))
            rows = [{"registry_name": registry, "project": a.project,
                     "cve_ids": ",".join(sorted(a.cve_ids)), "expires_at": a.expires_at,
                     "read_at": now} for a in allowlists if a.registry == registry]
            if rows:
                conn.execute(t.harbor_allowlist.insert(), rows)

    def load_allowlists(self) -> tuple[CveAllowlist, ...]:
        """Every registry's allowlists as last read (``save_allowlists``)."""
        al = t.harbor_allowlist.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(al.registry_name, al.project, al.cve_ids, al.expires_at)
                                .order_by(al.registry_name, al.project)).all()
        return tuple(CveAllowlist(row.registry_name,
                                  frozenset(filter(None, row.cve_ids.split(","))),
                                  row.expires_at, row.project) for row in rows)
