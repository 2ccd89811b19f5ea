"""Applying scan results to findings: the rules of DESIGN.md "Identity" and "What 'changed' means".

A finding (registry, project, repository, vulnerability, package) is open while any *counting*
artifact of the repository carries it. An artifact counts from its first successful scan until it
leaves the registry or loses its last tag; if a successor took the tag, the old one keeps counting
until the successor's first successful scan, so a push never shows "fixed" and then "new" again.

- Baseline: the digest's own previous successful report (same digest), else the last successful
  report of the digest its tags pointed to before, else none.
- First sight (no baseline, and the artifact was already there when the repository was first
  walked): findings are recorded without one NEW event each; one summary event is stored
  (``finding_event.finding_id`` NULL, ``count`` = findings) and returned as a ChangeEvent with
  reason ``first_sight``, empty vulnerability/package and ``count``. Alerts summarise it.
- An unchanged rescan (same content hash as the digest's last success) bumps that scan row's
  ``confirmations`` and the repository's open findings' ``last_seen``: nothing else is written.
- Only a Success with a report opens or resolves anything; Error/Stopped are recorded only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection, Row

from daemon import log
from daemon.diff import diff_reports
from daemon.model import (
    ArtifactRef,
    ChangeEvent,
    ChangeKind,
    FindingKey,
    Occurrence,
    Reason,
    ScanResult,
    ScanState,
    Severity,
)
from daemon.store import tables as t
from daemon.store.base import StoreBase
from daemon.store.content import canonical, content_hash, pack, unpack
from daemon.store.ignores import ignore_reason

_log = log.get(__name__)
Key = tuple[str, str]


@dataclass
class _Pending:
    """An event to store once its finding has an id."""

    kind: ChangeKind
    reason: Reason
    key: Key
    severity: Severity
    installed: str = ""
    fix: str = ""
    previous_severity: Severity | None = None
    previous_version: str = ""
    digests: tuple[str, ...] = ()
    count: int = 1
    ignored: bool = False


@dataclass(frozen=True)
class _Last:
    id: int
    status: str
    content_hash: str
    log_excerpt: str


@dataclass(frozen=True)
class _Target:
    registry: str
    project: str
    repository: str
    repository_id: int


def _group(occurrences: Iterable[Occurrence]) -> dict[Key, list[Occurrence]]:
    out: dict[Key, list[Occurrence]] = defaultdict(list)
    for occ in occurrences:
        out[(occ.id, occ.package)].append(occ)
    return out


def _summary(occs: list[Occurrence]) -> tuple[Severity, str, str]:
    if len(occs) == 1:
        o = occs[0]
        return o.severity, o.fix_version, o.version
    severity = max(o.severity for o in occs)
    fix = next((o.fix_version for o in occs if o.fix_version), "")
    versions = ", ".join(sorted({o.version for o in occs}))
    return severity, fix, versions


class HistoryMixin(StoreBase):
    # --- reading what history holds -------------------------------------------------------
    def _content(self, conn: Connection, content_id: int) -> tuple[Occurrence, ...]:
        found = self.contents.get(content_id)
        if found is None:
            blob = conn.execute(select(t.report_content.c.occurrences)
                                .where(t.report_content.c.id == content_id)).scalar_one()
            found = unpack(blob)
            self.contents.put(content_id, found)
        return found

    def _carried_keys(self, conn: Connection, repository_id: int, exclude: set[int]) -> set[Key]:
        a = t.artifact.c
        rows = conn.execute(select(a.id, a.content_id).where(
            a.repository_id == repository_id, a.counting.is_(True), a.content_id.is_not(None)))
        keys: set[Key] = set()
        for art_id, content_id in rows:
            if art_id not in exclude:
                keys.update((o.id, o.package) for o in self._content(conn, content_id))
        return keys

    def _findings(self, conn: Connection, repository_id: int) -> dict[Key, Row[Any]]:
        rows = conn.execute(_FINDINGS, {"repository_id": repository_id}).all()
        return {(row[1], row[2]): row for row in rows}

    def _artifact(self, conn: Connection, ref: ArtifactRef, now: datetime) -> Row[Any]:
        """The artifact's row (with its repository's first sighting), created if unknown."""
        r = t.repository.c
        reg_id = self._registry_id(conn, ref.registry, now, create=True)
        params = {"registry_id": reg_id, "project": ref.project, "repository": ref.repository,
                  "digest": ref.digest}
        row = conn.execute(_ARTIFACT, params).first()
        if row is not None:
            return row
        repo_id = conn.execute(select(r.id).where(
            r.registry_id == reg_id, r.project == ref.project, r.name == ref.repository)).scalar()
        if repo_id is None:
            repo_id = conn.execute(t.repository.insert().values(
                registry_id=reg_id, project=ref.project, name=ref.repository, first_seen=now,
                last_seen=now, removed_at=None)).inserted_primary_key[0]
        conn.execute(t.artifact.insert().values(
            repository_id=repo_id, digest=ref.digest, type="", media_type="",
            manifest_media_type="", parent_digest=None, size=0, first_seen=now, last_seen=now,
            removed_at=None, content_id=None, counting=False, last_scan_id=None,
            last_success_scan_id=None, consecutive_failures=0))
        return conn.execute(_ARTIFACT, params).one()

    # --- recording scans ------------------------------------------------------------------
    def record_scan(self, result: ScanResult, now: datetime) -> list[ChangeEvent]:
        """Store one scan outcome and apply it to findings; return the changes it brought."""
        return self.record_scans([result], now)

    def record_scans(self, results: Sequence[ScanResult], now: datetime) -> list[ChangeEvent]:
        """``record_scan`` for many results in one transaction (what collect should prefer)."""
        events: list[ChangeEvent] = []
        touched: set[int] = set()
        with self.engine.begin() as conn:
            for result in results:
                events.extend(self._record(conn, result, now, touched))
            f = t.finding.c
            for chunk in _chunks(sorted(touched)):
                conn.execute(update(t.finding).where(
                    f.repository_id.in_(chunk), f.resolved_at.is_(None)).values(last_seen=now))
        return events

    def _record(
        self, conn: Connection, result: ScanResult, now: datetime, touched: set[int]
    ) -> list[ChangeEvent]:
        if not result.state.finished:
            return []  # Pending/Running: Harbor's overview says so; history keeps outcomes only
        art = self._artifact(conn, result.ref, now)
        a = t.artifact.c
        last = None
        if art.last_scan_id is not None:
            last = _Last(art.last_scan_id, art.last_status, art.last_hash, art.last_excerpt)
        scanner = result.scanner
        base_values = {
            "artifact_id": art.id, "status": result.state.value,
            "started_at": result.started_at, "finished_at": result.finished_at or now,
            "scanner_name": scanner.name if scanner else "",
            "scanner_version": scanner.version if scanner else "",
            "scanner_db_updated_at": result.scanner_db_updated_at,
            "report_id": result.report_id, "error": "", "log_excerpt": result.log_excerpt,
            "trigger": result.trigger, "occurrence_count": 0, "content_hash": "",
            "content_id": None, "baseline_scan_id": None, "confirmations": 1,
            "last_confirmed_at": result.finished_at or now,
        }
        if result.state is not ScanState.SUCCESS or result.report is None:
            error = "stopped" if result.state is ScanState.STOPPED else (
                "incomplete report" if result.state is ScanState.SUCCESS else "scan failed")
            if last is not None and last.status == result.state.value \
                    and last.log_excerpt == result.log_excerpt and not last.content_hash:
                self._confirm(conn, last.id, result, now)
                scan_id = last.id
            else:
                base_values["error"] = error
                scan_id = conn.execute(t.scan.insert().values(**base_values)
                                       ).inserted_primary_key[0]
            failures = art.consecutive_failures + (result.state is not ScanState.SUCCESS)
            conn.execute(update(t.artifact).where(a.id == art.id).values(
                last_scan_id=scan_id, consecutive_failures=failures))
            return []
        data = canonical(result.report.occurrences)
        digest = content_hash(data)
        if (last is not None and last.id == art.last_success_scan_id
                and last.content_hash == digest):
            self._confirm(conn, last.id, result, now)
            touched.add(art.repository_id)
            return []
        rc = t.report_content.c
        content_id = conn.execute(select(rc.id).where(rc.content_hash == digest)).scalar()
        if content_id is None:
            content_id = conn.execute(t.report_content.insert().values(
                content_hash=digest, occurrence_count=len(result.report.occurrences),
                occurrences=pack(data), created_at=now)).inserted_primary_key[0]
        base_values.update(occurrence_count=len(result.report.occurrences),
                           content_hash=digest, content_id=content_id)
        scan_id = conn.execute(t.scan.insert().values(**base_values)).inserted_primary_key[0]
        events = self._apply(conn, art, result, scan_id, content_id, now)
        conn.execute(update(t.artifact).where(a.id == art.id).values(
            content_id=content_id, counting=art.removed_at is None and (
                art.counting or art.content_id is None),
            last_scan_id=scan_id, last_success_scan_id=scan_id, consecutive_failures=0))
        touched.add(art.repository_id)
        return events

    def _confirm(self, conn: Connection, scan_id: int, result: ScanResult, now: datetime) -> None:
        s = t.scan.c
        conn.execute(update(t.scan).where(s.id == scan_id).values(
            confirmations=s.confirmations + 1, last_confirmed_at=result.finished_at or now,
            report_id=result.report_id, scanner_db_updated_at=result.scanner_db_updated_at))

    def _predecessors(self, conn: Connection, artifact_id: int) -> list[Row[Any]]:
        """Artifacts that the tags now on ``artifact_id`` pointed to before, latest first."""
        return list(conn.execute(_PREDECESSORS, {"artifact_id": artifact_id}))

    def _apply(
        self, conn: Connection, art: Row[Any], result: ScanResult, scan_id: int,
        content_id: int, now: datetime,
    ) -> list[ChangeEvent]:
        assert result.report is not None
        if art.removed_at is not None or (art.content_id is not None and not art.counting):
            return []  # an image that no longer counts (deleted, or untagged and superseded)
        occurrences = result.report.occurrences
        current = _group(occurrences)
        preds: list[Row[Any]] = []
        if art.content_id is not None:
            baseline: tuple[Occurrence, ...] | None = self._content(conn, art.content_id)
            same = True
            base_scan = art.last_success_scan_id
        else:
            preds = self._predecessors(conn, art.id)
            baseline = self._content(conn, preds[0].content_id) if preds else None
            same = False
            base_scan = preds[0].last_success_scan_id if preds else None
        if base_scan is not None:
            conn.execute(update(t.scan).where(t.scan.c.id == scan_id)
                         .values(baseline_scan_id=base_scan))
        first_sight = baseline is None and art.first_seen <= art.repo_first_seen
        target = self._target(conn, result.ref, art.repository_id)
        findings = self._findings(conn, art.repository_id)
        digests = (result.ref.digest,)
        pending: list[_Pending] = []
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        summary = [0, Severity.NONE]
        attr: dict[Key, list[Any]] = defaultdict(list)
        if baseline is not None:
            for change in diff_reports(baseline, occurrences, same_digest=same):
                if change.kind in (ChangeKind.FIX_AVAILABLE, ChangeKind.SEVERITY_CHANGED):
                    attr[(change.occurrence.id, change.occurrence.package)].append(change)
        for key, occs in current.items():
            severity, fix, versions = _summary(occs)
            row = findings.get(key)
            values = {"severity": int(severity), "fix_version": fix,
                      "installed_versions": versions, "last_seen": now}
            if row is None:
                why = self._ignored(target, key, now)
                inserts.append({
                    "repository_id": art.repository_id, "vulnerability": key[0],
                    "package": key[1], **values, "first_seen": now, "opened_at": now,
                    "resolved_at": None, "resolved_reason": "", "ignored": bool(why),
                    "ignore_reason": why})
                if first_sight:
                    summary[0] += 1
                    summary[1] = max(summary[1], severity)
                else:
                    reason = Reason.ADVISORY_PUBLISHED if same else Reason.NEW_IMAGE
                    pending.append(_Pending(ChangeKind.NEW, reason, key, severity, versions,
                                            fix, digests=digests, ignored=bool(why)))
            elif row.resolved_at is not None:
                updates.append({"_id": row.id, **values, "opened_at": now, "resolved_at": None,
                                "resolved_reason": ""})
                pending.append(_Pending(ChangeKind.REOPENED, Reason.REOPENED, key, severity,
                                        versions, fix, Severity(row.severity),
                                        digests=digests, ignored=row.ignored))
            else:
                changed = False
                for change in attr.get(key, []):
                    prev = change.previous
                    if change.kind is ChangeKind.FIX_AVAILABLE and not row.fix_version:
                        pending.append(_Pending(change.kind, change.reason, key, severity,
                                                versions, fix, digests=digests,
                                                ignored=row.ignored))
                        changed = True
                    elif change.kind is ChangeKind.SEVERITY_CHANGED \
                            and row.severity != int(change.occurrence.severity):
                        pending.append(_Pending(
                            change.kind, change.reason, key, change.occurrence.severity,
                            versions, fix, Severity(row.severity),
                            prev.version if prev else "", digests, ignored=row.ignored))
                        changed = True
                if changed:
                    updates.append({"_id": row.id, **values, "opened_at": None,
                                    "resolved_at": None, "resolved_reason": ""})
        # What this scan (or the rebuild it belongs to) no longer carries.
        gone: dict[Key, Reason] = {}
        if same and baseline is not None:
            for key in set(_group(baseline)) - set(current):
                gone[key] = Reason.ADVISORY_WITHDRAWN
        retired = [p for p in preds if p.counting and not p.tagged]
        for pred in retired:
            for occ in self._content(conn, pred.content_id):
                if (occ.id, occ.package) not in current:
                    gone.setdefault((occ.id, occ.package), Reason.FIXED_BY_REBUILD)
        if retired:
            conn.execute(update(t.artifact).where(t.artifact.c.id.in_([p.id for p in retired]))
                         .values(counting=False))
        if gone:
            carried = self._carried_keys(conn, art.repository_id,
                                         {art.id, *(p.id for p in retired)})
            gone_digests = tuple(p.digest for p in retired) or digests
            for key, reason in sorted(gone.items()):
                row = findings.get(key)
                if key in carried or row is None or row.resolved_at is not None:
                    continue
                updates.append({"_id": row.id, "severity": row.severity,
                                "fix_version": row.fix_version,
                                "installed_versions": row.installed_versions, "last_seen": now,
                                "opened_at": None, "resolved_at": now,
                                "resolved_reason": reason.value})
                pending.append(_Pending(ChangeKind.FIXED, reason, key, Severity(row.severity),
                                        row.installed_versions, row.fix_version,
                                        digests=gone_digests, ignored=row.ignored))
        self._write_findings(conn, inserts, updates)
        if summary[0]:
            pending.append(_Pending(ChangeKind.NEW, Reason.FIRST_SIGHT, ("", ""),
                                    Severity(summary[1]), digests=digests, count=summary[0]))
        return self._store_events(conn, target, pending, scan_id, now,
                                  need_ids=bool(inserts) and not first_sight,
                                  findings=findings, tags=result.tags)

    # --- shared writers -------------------------------------------------------------------
    def _target(self, conn: Connection, ref: ArtifactRef, repository_id: int) -> _Target:
        return _Target(ref.registry, ref.project, ref.repository, repository_id)

    def _ignored(self, target: _Target, key: Key, now: datetime) -> str:
        if not self.ignores and not self.allowlists:
            return ""
        fkey = FindingKey(target.registry, target.project, target.repository, *key)
        return ignore_reason(fkey, self.ignores, self.allowlists, now)

    def _write_findings(
        self, conn: Connection, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]
    ) -> None:
        if inserts:
            conn.execute(t.finding.insert(), inserts)
        f = t.finding.c
        reopened = [u for u in updates if u["opened_at"] is not None]
        others = [{k: v for k, v in u.items() if k != "opened_at"}
                  for u in updates if u["opened_at"] is None]
        cols = ("severity", "fix_version", "installed_versions", "last_seen", "resolved_at",
                "resolved_reason")
        stmt = update(t.finding).where(f.id == bindparam("_id"))
        if reopened:
            conn.execute(stmt.values({c: bindparam(c) for c in (*cols, "opened_at")}), reopened)
        if others:
            conn.execute(stmt.values({c: bindparam(c) for c in cols}), others)

    def _store_events(
        self, conn: Connection, target: _Target, pending: list[_Pending], scan_id: int | None,
        now: datetime, *, need_ids: bool, findings: dict[Key, Row[Any]],
        tags: tuple[str, ...] = (),
    ) -> list[ChangeEvent]:
        if not pending:
            return []
        ids = {k: row.id for k, row in findings.items()}
        if need_ids:
            ids = {k: row.id for k, row in self._findings(conn, target.repository_id).items()}
        rows = [{
            "finding_id": ids.get(p.key) if p.key != ("", "") else None,
            "repository_id": target.repository_id, "scan_id": scan_id,
            "kind": p.kind.value, "reason": p.reason.value, "at": now,
            "severity": int(p.severity),
            "previous_severity": None if p.previous_severity is None else int(p.previous_severity),
            "installed_version": p.installed, "previous_version": p.previous_version,
            "fix_version": p.fix, "digests": ",".join(p.digests), "count": p.count,
        } for p in pending]
        conn.execute(t.finding_event.insert(), rows)
        return [ChangeEvent(
            kind=p.kind, reason=p.reason,
            finding=FindingKey(target.registry, target.project, target.repository, *p.key),
            severity=p.severity, at=now, installed_version=p.installed, fix_version=p.fix,
            previous_severity=p.previous_severity, digests=p.digests, tags=tuple(tags),
            ignored=p.ignored, count=p.count) for p in pending]


def _predecessors_query() -> Any:
    tg, a = t.tag.c, t.artifact.c
    me = bindparam("artifact_id")
    mine = select(tg.repository_id, tg.name).where(
        tg.artifact_id == me, tg.until.is_(None)).subquery()
    other = t.tag.alias("other")
    open_tag = (select(other.c.id).where(other.c.artifact_id == a.id, other.c.until.is_(None))
                .correlate(t.artifact).exists())
    return (select(a.id, a.digest, a.content_id, a.counting, a.last_success_scan_id,
                   open_tag.label("tagged"), func.max(tg.until).label("until"))
            .join(t.tag, tg.artifact_id == a.id)
            .join(mine, (mine.c.repository_id == tg.repository_id) & (mine.c.name == tg.name))
            .where(a.id != me, tg.until.is_not(None), a.content_id.is_not(None))
            .group_by(a.id, a.digest, a.content_id, a.counting, a.last_success_scan_id)
            .order_by(func.max(tg.until).desc()))


def _artifact_query() -> Any:
    a, r, s = t.artifact.c, t.repository.c, t.scan.c
    return (select(a.id, a.repository_id, a.first_seen, a.removed_at, a.content_id,
                   a.counting, a.last_scan_id, a.last_success_scan_id,
                   a.consecutive_failures, r.first_seen.label("repo_first_seen"),
                   s.status.label("last_status"), s.content_hash.label("last_hash"),
                   s.log_excerpt.label("last_excerpt"))
            .join(t.repository, r.id == a.repository_id)
            .outerjoin(t.scan, s.id == a.last_scan_id)
            .where(r.registry_id == bindparam("registry_id"), r.project == bindparam("project"),
                   r.name == bindparam("repository"), a.digest == bindparam("digest")))


def _findings_query() -> Any:
    f = t.finding.c
    return select(f.id, f.vulnerability, f.package, f.severity, f.fix_version,
                  f.installed_versions, f.resolved_at, f.ignored).where(
        f.repository_id == bindparam("repository_id"))


_PREDECESSORS = _predecessors_query()
_ARTIFACT = _artifact_query()
_FINDINGS = _findings_query()


def _chunks(ids: Sequence[int], size: int = 500) -> list[list[int]]:
    items = list(ids)
    return [items[i:i + size] for i in range(0, len(items), size)]
