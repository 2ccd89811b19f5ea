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

``record_scans`` stores a batch in one transaction. It loads the batch's artifacts, the content
ids of its reports and which artifacts may have predecessors in a few queries, keeps each
repository's findings in memory while the batch runs (writes go through at once, so later
results of the batch see earlier ones exactly as ``record_scan`` one by one would), and runs only
statements built once (``statements.py``). Per occurrence it does set operations on finding keys;
a finding already open and unchanged costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Row

from daemon import log
from daemon import versions as versions_mod
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
from daemon.store import statements as q
from daemon.store import tables as t
from daemon.store.base import StoreBase
from daemon.store.batch import (
    Key,
    _Art,
    _Batch,
    _by_version,
    _chunks,
    _Findings,
    _group,
    _insert,
    _Pending,
    _Plan,
    _summary,
    _Target,
)
from daemon.store.content import canonical, content_hash, pack, unpack, unpack_keys
from daemon.store.ignores import ignore_reason

_log = log.get(__name__)
class HistoryMixin(StoreBase):
    # --- reading what history holds -------------------------------------------------------
    def _content(self, conn: Connection, content_id: int) -> tuple[Occurrence, ...]:
        found = self.contents.get(content_id)
        if found is None:
            found = unpack(conn.execute(q.CONTENT_BLOB, {"content_id": content_id}).scalar_one())
            self.contents.put(content_id, found)
        return found

    def _content_keys(self, conn: Connection, content_id: int) -> frozenset[Key]:
        found = self.contents.get_keys(content_id)
        if found is None:
            found = unpack_keys(
                conn.execute(q.CONTENT_BLOB, {"content_id": content_id}).scalar_one())
            self.contents.put_keys(content_id, found)
        return found

    def _carried_keys(
        self, conn: Connection, repository_id: int, exclude: set[int], wanted: set[Key]
    ) -> set[Key]:
        """Of ``wanted``, the keys that a counting artifact of the repository (other than
        ``exclude``) carries. Already decoded contents are looked at first, and the search
        stops as soon as every wanted key is found."""
        rows = [(art_id, content_id) for art_id, content_id in conn.execute(
            q.COUNTING_CONTENTS, {"repository_id": repository_id}) if art_id not in exclude]
        rows.sort(key=lambda row: not self.contents.has_keys(row[1]))
        missing, found = set(wanted), set()
        for _, content_id in rows:
            if not missing:
                break
            hit = missing & self._content_keys(conn, content_id)
            found |= hit
            missing -= hit
        return found

    def _findings(self, conn: Connection, repository_id: int) -> dict[Key, Row[Any]]:
        """The repository's findings by key (``resolved`` says whether one is closed)."""
        rows = conn.execute(q.FINDINGS, {"repository_id": repository_id}).all()
        return {(row[1], row[2]): row for row in rows}

    def _batch_findings(self, b: _Batch, repository_id: int, *, rows: bool) -> _Findings:
        """The repository's findings for this batch (``rows``: with every row, not only the
        open keys)."""
        found = b.findings.get(repository_id)
        if found is None or (rows and found.stale):
            got = self._findings(b.conn, repository_id)
            found = _Findings(got, {k for k, row in got.items() if not row.resolved})
            b.findings[repository_id] = found
        return found

    def _artifact(self, conn: Connection, ref: ArtifactRef, now: datetime) -> Row[Any]:
        """The artifact's row (with its repository's first sighting), created if unknown."""
        reg_id = self._registry_id(conn, ref.registry, now, create=True)
        params = {"registry_id": reg_id, "project": ref.project, "repository": ref.repository,
                  "digest": ref.digest}
        row = conn.execute(q.ARTIFACT, params).first()
        if row is not None:
            return row
        repo_id = conn.execute(q.REPOSITORY_ID, params).scalar()
        if repo_id is None:
            repo_id = _insert(conn, q.INSERT_REPOSITORY, {
                "registry_id": reg_id, "project": ref.project, "name": ref.repository,
                "first_seen": now, "last_seen": now, "removed_at": None,
            })
        _insert(conn, q.INSERT_ARTIFACT, {
            "repository_id": repo_id, "digest": ref.digest, "type": "", "media_type": "",
            "manifest_media_type": "", "parent_digest": None, "size": 0, "first_seen": now,
            "last_seen": now, "removed_at": None, "content_id": None, "counting": False,
            "last_scan_id": None, "last_success_scan_id": None, "consecutive_failures": 0})
        return conn.execute(q.ARTIFACT, params).one()

    def _load(self, b: _Batch, refs: Sequence[ArtifactRef], hashes: set[str]) -> None:
        """Load the batch's known artifacts, content ids and who may have predecessors."""
        by_registry: dict[str, list[ArtifactRef]] = {}
        for ref in refs:
            by_registry.setdefault(ref.registry, []).append(ref)
        for registry, wanted in by_registry.items():
            reg_id = self._registry_id(b.conn, registry, b.now, create=True)
            keys = {(r.project, r.repository, r.digest) for r in wanted}
            projects = sorted({r.project for r in wanted})
            names = sorted({r.repository for r in wanted})
            for digests in _chunks(sorted({r.digest for r in wanted})):
                for row in b.conn.execute(q.ARTIFACTS, {
                        "registry_id": reg_id, "projects": projects, "names": names,
                        "digests": digests}):
                    if (row.project, row.name, row.digest) in keys:
                        art = _Art(row)
                        b.arts[(registry, row.project, row.name, row.digest)] = art
                        b.by_id[art.id] = art
        first = [art.id for art in b.by_id.values() if art.content_id is None]
        for ids in _chunks(first):
            b.with_predecessors.update(
                row[0] for row in b.conn.execute(q.MAY_HAVE_PREDECESSORS, {"ids": ids}))
        b.checked.update(first)
        for chunk in _chunks(sorted(hashes)):
            b.content_ids.update(
                (row[0], row[1]) for row in b.conn.execute(q.CONTENT_IDS, {"hashes": chunk}))

    def _art(self, b: _Batch, ref: ArtifactRef) -> _Art:
        key = (ref.registry, ref.project, ref.repository, ref.digest)
        art = b.arts.get(key)
        if art is None:
            b.flush()
            art = _Art(self._artifact(b.conn, ref, b.now))
            b.arts[key] = art
            b.by_id[art.id] = art
        return art

    # --- recording scans ------------------------------------------------------------------
    def record_scan(self, result: ScanResult, now: datetime) -> list[ChangeEvent]:
        """Store one scan outcome and apply it to findings; return the changes it brought."""
        return self.record_scans([result], now)

    def record_scans(self, results: Sequence[ScanResult], now: datetime) -> list[ChangeEvent]:
        """``record_scan`` for many results in one transaction (what collect should prefer)."""
        finished = [r for r in results if r.state.finished]
        if not finished:
            return []  # Pending/Running: Harbor's overview says so; history keeps outcomes only
        canon: list[tuple[bytes, str] | None] = []
        for result in finished:
            if result.state is ScanState.SUCCESS and result.report is not None:
                data = canonical(result.report.occurrences)
                canon.append((data, content_hash(data)))
            else:
                canon.append(None)
        events: list[ChangeEvent] = []
        with self.engine.begin() as conn:
            b = _Batch(conn, now)
            self._load(b, [r.ref for r in finished], {c[1] for c in canon if c is not None})
            for result, content in zip(finished, canon, strict=True):
                events.extend(self._record(b, result, content))
            b.flush()
            if b.confirms:
                conn.execute(q.CONFIRM_SCAN, b.confirms)
            for chunk in _chunks(sorted(b.touched)):
                conn.execute(q.TOUCH_FINDINGS, {"ids": chunk, "_now": now})
        return events

    def _record(
        self, b: _Batch, result: ScanResult, content: tuple[bytes, str] | None
    ) -> list[ChangeEvent]:
        conn, now = b.conn, b.now
        art = self._art(b, result.ref)
        scanner = result.scanner
        values = {
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
        if content is None or result.report is None:
            if art.last_scan_id is not None and art.last_status == result.state.value \
                    and art.last_excerpt == result.log_excerpt and not art.last_hash:
                self._confirm(b, art.last_scan_id, result)
                scan_id = art.last_scan_id
            else:
                values["error"] = "stopped" if result.state is ScanState.STOPPED else (
                    "incomplete report" if result.state is ScanState.SUCCESS else "scan failed")
                scan_id = _insert(conn, q.INSERT_SCAN, values)
                art.last_status, art.last_hash = result.state.value, ""
                art.last_excerpt = result.log_excerpt
            failures = art.consecutive_failures + (result.state is not ScanState.SUCCESS)
            b.flush()
            conn.execute(q.ARTIFACT_FAILED, {"_id": art.id, "_scan": scan_id,
                                             "_failures": failures})
            art.last_scan_id, art.consecutive_failures = scan_id, failures
            return []
        data, digest = content
        if (art.last_scan_id is not None and art.last_scan_id == art.last_success_scan_id
                and art.last_hash == digest):
            self._confirm(b, art.last_scan_id, result)
            b.touched.add(art.repository_id)
            return []
        count = len(result.report.occurrences)
        content_id = b.content_ids.get(digest)
        if content_id is None:
            content_id = _insert(conn, q.INSERT_CONTENT, {
                "content_hash": digest, "occurrence_count": count, "occurrences": pack(data),
                "created_at": now})
            b.content_ids[digest] = content_id
        counts = art.removed_at is None and (art.content_id is None or art.counting)
        plan = self._plan(b, art) if counts else None
        values.update(occurrence_count=count, content_hash=digest, content_id=content_id,
                      baseline_scan_id=plan.scan_id if plan else None)
        scan_id = _insert(conn, q.INSERT_SCAN, values)
        events = self._apply(b, art, result, scan_id, plan) if plan else []
        counting = art.removed_at is None and (art.counting or art.content_id is None)
        b.scanned.append({"_id": art.id, "_content": content_id, "_counting": counting,
                          "_scan": scan_id, "_success": scan_id})
        art.content_id, art.counting = content_id, counting
        art.last_scan_id = art.last_success_scan_id = scan_id
        art.consecutive_failures = 0
        art.last_status, art.last_hash = result.state.value, digest
        art.last_excerpt = result.log_excerpt
        b.touched.add(art.repository_id)
        return events

    def _confirm(self, b: _Batch, scan_id: int, result: ScanResult) -> None:
        """Count one more identical outcome on ``scan_id`` (written at the end of the batch:
        nothing in the batch reads what this changes)."""
        b.confirms.append({"_id": scan_id, "_at": result.finished_at or b.now,
                           "_report_id": result.report_id,
                           "_db": result.scanner_db_updated_at})

    def _predecessors(self, conn: Connection, artifact_id: int) -> list[Row[Any]]:
        """Artifacts that the tags now on ``artifact_id`` pointed to before, latest first."""
        return list(conn.execute(q.PREDECESSORS, {"artifact_id": artifact_id}))

    def _plan(self, b: _Batch, art: _Art) -> _Plan:
        if art.content_id is not None:
            return _Plan(self._content(b.conn, art.content_id), True, [],
                         art.last_success_scan_id)
        preds: list[Row[Any]] = []
        if art.id not in b.checked or art.id in b.with_predecessors:
            b.flush()
            preds = self._predecessors(b.conn, art.id)
        if not preds:
            return _Plan(None, False, [], None)
        return _Plan(self._content(b.conn, preds[0].content_id), False, preds,
                     preds[0].last_success_scan_id)

    def _apply(
        self, b: _Batch, art: _Art, result: ScanResult, scan_id: int, plan: _Plan
    ) -> list[ChangeEvent]:
        assert result.report is not None
        conn, now = b.conn, b.now
        occurrences = result.report.occurrences
        baseline, same, preds = plan.baseline, plan.same, plan.predecessors
        first_sight = baseline is None and art.first_seen <= art.repo_first_seen
        ref = result.ref
        target = _Target(ref.registry, ref.project, ref.repository, art.repository_id)
        digests = (ref.digest,)
        pending: list[_Pending] = []
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        summary = [0, Severity.NONE]
        attr: dict[Key, list[Any]] = {}
        if baseline is not None:
            for change in diff_reports(baseline, occurrences, same_digest=same):
                if change.kind in (ChangeKind.FIX_AVAILABLE, ChangeKind.SEVERITY_CHANGED):
                    attr.setdefault((change.occurrence.id, change.occurrence.package),
                                    []).append(change)
        current = {(o.id, o.package) for o in occurrences}
        known = self._batch_findings(b, art.repository_id, rows=False)
        # Only keys without an open finding, or with a change to apply, need any work.
        todo = (current - known.open) | attr.keys()
        # What this scan (or the rebuild it belongs to) no longer carries.
        gone: dict[Key, Reason] = {}
        if same and baseline is not None:
            for key in {(o.id, o.package) for o in baseline} - current:
                gone[key] = Reason.ADVISORY_WITHDRAWN
        retired = [p for p in preds if p.counting and not p.tagged]
        for pred in retired:
            for key in self._content_keys(conn, pred.content_id) - current:
                gone.setdefault(key, Reason.FIXED_BY_REBUILD)
        if todo or gone:
            known = self._batch_findings(b, art.repository_id, rows=True)
        findings = known.rows
        if todo:
            for key, occs in _group(o for o in occurrences if (o.id, o.package) in todo).items():
                self._decide(target, key, occs, findings.get(key), attr.get(key, ()), same,
                             first_sight, digests, now, pending, inserts, updates, summary)
        if retired:
            b.flush()
            conn.execute(q.UNCOUNT_ARTIFACTS, {"ids": [p.id for p in retired]})
            for pred in retired:
                if pred.id in b.by_id:
                    b.by_id[pred.id].counting = False
        if gone:
            b.flush()
            carried = self._carried_keys(conn, art.repository_id,
                                         {art.id, *(p.id for p in retired)}, set(gone))
            gone_digests = tuple(p.digest for p in retired) or digests
            for key, reason in sorted(gone.items()):
                row = findings.get(key)
                if key in carried or row is None or row.resolved:
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
        if updates:
            b.findings.pop(art.repository_id, None)
        elif inserts:
            known.open.update((row["vulnerability"], row["package"]) for row in inserts)
            known.stale = True
        if summary[0]:
            pending.append(_Pending(ChangeKind.NEW, Reason.FIRST_SIGHT, ("", ""),
                                    Severity(summary[1]), digests=digests, count=summary[0]))
        if inserts and not first_sight and pending:
            findings = self._batch_findings(b, art.repository_id, rows=True).rows
        return self._store_events(conn, target, pending, scan_id, now, need_ids=False,
                                  findings=findings, tags=result.tags)

    def _decide(
        self, target: _Target, key: Key, occs: list[Occurrence], row: Row[Any] | None,
        changes: Iterable[Any], same: bool, first_sight: bool, digests: tuple[str, ...],
        now: datetime, pending: list[_Pending], inserts: list[dict[str, Any]],
        updates: list[dict[str, Any]], summary: list[Any],
    ) -> None:
        """One finding key the scan carries: new, reopened, or changed (fix, severity)."""
        severity, fix, versions = _summary(occs)
        values = {"severity": int(severity), "fix_version": fix,
                  "installed_versions": versions, "last_seen": now}
        if row is None:
            why = self._ignored(target, key, now)
            inserts.append({
                "repository_id": target.repository_id, "vulnerability": key[0],
                "package": key[1], **values, "first_seen": now, "opened_at": now,
                "resolved_at": None, "resolved_reason": "", "ignored": bool(why),
                "ignore_reason": why})
            if first_sight:
                summary[0] += 1
                summary[1] = max(summary[1], severity)
            else:
                reason = Reason.ADVISORY_PUBLISHED if same else Reason.NEW_IMAGE
                pending.extend(_Pending(ChangeKind.NEW, reason, key, sev, installed, fixed,
                                        digests=digests, ignored=bool(why))
                               for sev, fixed, installed in _by_version(occs))
        elif row.resolved:
            updates.append({"_id": row.id, **values, "opened_at": now, "resolved_at": None,
                            "resolved_reason": ""})
            pending.extend(_Pending(ChangeKind.REOPENED, Reason.REOPENED, key, sev, installed,
                                    fixed, Severity(row.severity), digests=digests,
                                    ignored=row.ignored)
                           for sev, fixed, installed in _by_version(occs))
        else:
            changed = False
            if row.fix_version and fix and row.fix_version != fix:
                # Other images of the repository may carry another version: keep a fix that
                # covers them too (the findings command recomputes it from the images anyway).
                values["fix_version"] = versions_mod.highest([row.fix_version, fix]) or fix
            for change in changes:
                prev = change.previous
                occ = change.occurrence
                if change.kind is ChangeKind.FIX_AVAILABLE and (
                        not row.fix_version or occ.fix_version != row.fix_version):
                    # Per installed version: another version's fix may have been announced.
                    pending.append(_Pending(change.kind, change.reason, key, occ.severity,
                                            occ.version, occ.fix_version, digests=digests,
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

    # --- shared writers -------------------------------------------------------------------
    def _ignored(self, target: _Target, key: Key, now: datetime) -> str:
        if not self.ignores and not self.allowlists:
            return ""
        fkey = FindingKey(target.registry, target.project, target.repository, *key)
        return ignore_reason(fkey, self.ignores, self.allowlists, now)

    def _write_findings(
        self, conn: Connection, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]
    ) -> None:
        q.bulk_insert(conn, t.finding, inserts)
        reopened = [u for u in updates if u["opened_at"] is not None]
        others = [{k: v for k, v in u.items() if k != "opened_at"}
                  for u in updates if u["opened_at"] is None]
        if reopened:
            conn.execute(q.REOPEN_FINDING, reopened)
        if others:
            conn.execute(q.UPDATE_FINDING, others)

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
        conn.execute(q.INSERT_EVENT, rows)
        return [ChangeEvent(
            kind=p.kind, reason=p.reason,
            finding=FindingKey(target.registry, target.project, target.repository, *p.key),
            severity=p.severity, at=now, installed_version=p.installed, fix_version=p.fix,
            previous_severity=p.previous_severity, digests=p.digests, tags=tuple(tags),
            ignored=p.ignored, count=p.count) for p in pending]
