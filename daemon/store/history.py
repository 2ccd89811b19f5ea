"""Applying scan results to findings: loading what ``daemon/diff.py`` decides over, and writing
what it decides (DESIGN.md "Identity" and "What 'changed' means").

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

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Row

from daemon import diff, log
from daemon.diff import StoredFinding
from daemon.ignores import NO_RULES, IgnoreRules
from daemon.model import (
    ArtifactRef,
    ChangeEvent,
    ChangeKind,
    Occurrence,
    ScanResult,
    ScanState,
    Severity,
)
from daemon.store import carriers
from daemon.store import statements as q
from daemon.store import tables as t
from daemon.store.base import Caches, registry_id
from daemon.store.batch import Art, Batch, Findings, Key, Plan, Target, chunks, insert
from daemon.store.content import ContentCache, canonical, content_hash, pack, unpack, unpack_keys

_log = log.get(__name__)


# --- reading what history holds -------------------------------------------------------
def decoded_content(conn: Connection, cache: ContentCache, content_id: int
                    ) -> tuple[Occurrence, ...]:
    found = cache.get(content_id)
    if found is None:
        found = unpack(conn.execute(q.CONTENT_BLOB, {"content_id": content_id}).scalar_one())
        cache.put(content_id, found)
    return found


def content_keys(conn: Connection, cache: ContentCache, content_id: int) -> frozenset[Key]:
    found = cache.get_keys(content_id)
    if found is None:
        found = unpack_keys(
            conn.execute(q.CONTENT_BLOB, {"content_id": content_id}).scalar_one())
        cache.put_keys(content_id, found)
    return found


def carried_keys(
    conn: Connection, cache: ContentCache, repository_id: int, exclude: set[int],
    wanted: set[Key],
) -> set[Key]:
    """Of ``wanted``, the keys that a counting artifact of the repository (other than
    ``exclude``) carries. Already decoded contents are looked at first, and the search
    stops as soon as every wanted key is found."""
    rows = [(art_id, content_id) for art_id, content_id in conn.execute(
        q.COUNTING_CONTENTS, {"repository_id": repository_id}) if art_id not in exclude]
    rows.sort(key=lambda row: not cache.has_keys(row[1]))
    missing, found = set(wanted), set()
    for _, content_id in rows:
        if not missing:
            break
        hit = missing & content_keys(conn, cache, content_id)
        found |= hit
        missing -= hit
    return found


def stored_findings(conn: Connection, repository_id: int) -> dict[Key, StoredFinding]:
    """The repository's findings by key, as the history rules take them."""
    return {(row[1], row[2]): StoredFinding(
                row.id, Severity(row.severity), row.fix_version, row.installed_versions,
                row.resolved, row.ignored, row.ignore_reason)
            for row in conn.execute(q.FINDINGS, {"repository_id": repository_id})}


def batch_findings(b: Batch, repository_id: int, *, rows: bool) -> Findings:
    """The repository's findings for this batch (``rows``: with every row, not only the
    open keys)."""
    found = b.findings.get(repository_id)
    if found is None or (rows and found.stale):
        got = stored_findings(b.conn, repository_id)
        found = Findings(got, {k for k, f in got.items() if not f.resolved})
        b.findings[repository_id] = found
    return found


def artifact_row(conn: Connection, caches: Caches, ref: ArtifactRef, now: datetime) -> Row[Any]:
    """The artifact's row (with its repository's first sighting), created if unknown."""
    reg_id = registry_id(conn, caches, ref.registry, now, create=True)
    params = {"registry_id": reg_id, "project": ref.project, "repository": ref.repository,
              "digest": ref.digest}
    row = conn.execute(q.ARTIFACT, params).first()
    if row is not None:
        return row
    repo_id = conn.execute(q.REPOSITORY_ID, params).scalar()
    if repo_id is None:
        repo_id = insert(conn, q.INSERT_REPOSITORY, {
            "registry_id": reg_id, "project": ref.project, "name": ref.repository,
            "first_seen": now, "last_seen": now, "removed_at": None,
        })
    insert(conn, q.INSERT_ARTIFACT, {
        "repository_id": repo_id, "digest": ref.digest, "type": "", "media_type": "",
        "manifest_media_type": "", "parent_digest": None, "size": 0, "first_seen": now,
        "last_seen": now, "removed_at": None, "content_id": None, "counting": False,
        "last_scan_id": None, "last_success_scan_id": None, "consecutive_failures": 0})
    return conn.execute(q.ARTIFACT, params).one()


def load(b: Batch, refs: Sequence[ArtifactRef], hashes: set[str]) -> None:
    """Load the batch's known artifacts, content ids and who may have predecessors."""
    by_registry: dict[str, list[ArtifactRef]] = {}
    for ref in refs:
        by_registry.setdefault(ref.registry, []).append(ref)
    for registry, wanted in by_registry.items():
        reg_id = registry_id(b.conn, b.caches, registry, b.now, create=True)
        keys = {(r.project, r.repository, r.digest) for r in wanted}
        projects = sorted({r.project for r in wanted})
        names = sorted({r.repository for r in wanted})
        for digests in chunks(sorted({r.digest for r in wanted})):
            for row in b.conn.execute(q.ARTIFACTS, {
                    "registry_id": reg_id, "projects": projects, "names": names,
                    "digests": digests}):
                if (row.project, row.name, row.digest) in keys:
                    art = Art(row)
                    b.arts[(registry, row.project, row.name, row.digest)] = art
                    b.by_id[art.id] = art
    first = [art.id for art in b.by_id.values() if art.content_id is None]
    for ids in chunks(first):
        b.with_predecessors.update(
            row[0] for row in b.conn.execute(q.MAY_HAVE_PREDECESSORS, {"ids": ids}))
    b.checked.update(first)
    for chunk in chunks(sorted(hashes)):
        b.content_ids.update(
            (row[0], row[1]) for row in b.conn.execute(q.CONTENT_IDS, {"hashes": chunk}))


def batch_art(b: Batch, ref: ArtifactRef) -> Art:
    key = (ref.registry, ref.project, ref.repository, ref.digest)
    art = b.arts.get(key)
    if art is None:
        b.flush()
        art = Art(artifact_row(b.conn, b.caches, ref, b.now))
        b.arts[key] = art
        b.by_id[art.id] = art
    return art


# --- recording scans ------------------------------------------------------------------
def record_scans(conn: Connection, caches: Caches, results: Sequence[ScanResult], now: datetime,
                 rules: IgnoreRules = NO_RULES) -> list[ChangeEvent]:
    """Store scan outcomes in the transaction of ``conn`` and apply them to findings; the
    changes they brought. ``rules`` (the ignore rules in force) set the ``ignored`` mark of
    the findings they open and of the events they record."""
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
    b = Batch(conn, caches, now)
    load(b, [r.ref for r in finished], {c[1] for c in canon if c is not None})
    for result, content in zip(finished, canon, strict=True):
        events.extend(record_one(b, result, content, rules))
    b.flush()
    if b.confirms:
        conn.execute(q.CONFIRM_SCAN, b.confirms)
    for chunk in chunks(sorted(b.touched)):
        conn.execute(q.TOUCH_FINDINGS, {"ids": chunk, "_now": now})
    return events


def record_one(b: Batch, result: ScanResult, content: tuple[bytes, str] | None,
    rules: IgnoreRules,
) -> list[ChangeEvent]:
    conn, now = b.conn, b.now
    art = batch_art(b, result.ref)
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
    report = result.report if diff.can_resolve(result) else None
    if content is None or report is None:
        if art.last_scan_id is not None and art.last_status == result.state.value \
                and art.last_excerpt == result.log_excerpt and not art.last_hash:
            confirm(b, art.last_scan_id, result)
            scan_id = art.last_scan_id
        else:
            values["error"] = "stopped" if result.state is ScanState.STOPPED else (
                "incomplete report" if result.state is ScanState.SUCCESS else "scan failed")
            scan_id = insert(conn, q.INSERT_SCAN, values)
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
        confirm(b, art.last_scan_id, result)
        b.touched.add(art.repository_id)
        return []
    count = len(report.occurrences)
    content_id = b.content_ids.get(digest)
    if content_id is None:
        content_id = insert(conn, q.INSERT_CONTENT, {
            "content_hash": digest, "occurrence_count": count, "occurrences": pack(data),
            "created_at": now})
        carriers.write(conn, content_id, report.occurrences)
        b.content_ids[digest] = content_id
    counts = art.removed_at is None and (art.content_id is None or art.counting)
    plan = plan_for(b, art) if counts else None
    values.update(occurrence_count=count, content_hash=digest, content_id=content_id,
                  baseline_scan_id=plan.scan_id if plan else None)
    scan_id = insert(conn, q.INSERT_SCAN, values)
    events = apply(b, art, result, scan_id, plan, rules) if plan else []
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


def confirm(b: Batch, scan_id: int, result: ScanResult) -> None:
    """Count one more identical outcome on ``scan_id`` (written at the end of the batch:
    nothing in the batch reads what this changes)."""
    b.confirms.append({"_id": scan_id, "_at": result.finished_at or b.now,
                       "_report_id": result.report_id,
                       "_db": result.scanner_db_updated_at})


def predecessors(conn: Connection, artifact_id: int) -> list[Row[Any]]:
    """Artifacts that the tags now on ``artifact_id`` pointed to before, latest first."""
    return list(conn.execute(q.PREDECESSORS, {"artifact_id": artifact_id}))


def plan_for(b: Batch, art: Art) -> Plan:
    if art.content_id is not None:
        return Plan(decoded_content(b.conn, b.caches.contents, art.content_id), True, [],
                     art.last_success_scan_id)
    preds: list[Row[Any]] = []
    if art.id not in b.checked or art.id in b.with_predecessors:
        b.flush()
        preds = predecessors(b.conn, art.id)
    if not preds:
        return Plan(None, False, [], None)
    return Plan(decoded_content(b.conn, b.caches.contents, preds[0].content_id), False, preds,
                 preds[0].last_success_scan_id)


def apply(b: Batch, art: Art, result: ScanResult, scan_id: int, plan: Plan,
    rules: IgnoreRules,
) -> list[ChangeEvent]:
    """Load what ``diff.apply_scan`` needs for this scan, and apply what it decides."""
    assert result.report is not None
    conn, now = b.conn, b.now
    ref = result.ref
    target = Target(ref.registry, ref.project, ref.repository, art.repository_id)
    # The images this one replaces (their tags moved here) stop counting now.
    retired = [p for p in plan.predecessors if p.counting and not p.tagged]
    found = diff.diff_scan(
        result.report.occurrences, plan.baseline, same_digest=plan.same,
        superseded=[content_keys(conn, b.caches.contents, p.content_id) for p in retired])
    known = batch_findings(b, art.repository_id, rows=False)
    if found.gone or found.todo(known.open):
        known = batch_findings(b, art.repository_id, rows=True)
    if retired:
        b.flush()
        conn.execute(q.UNCOUNT_ARTIFACTS, {"ids": [p.id for p in retired]})
        for pred in retired:
            if pred.id in b.by_id:
                b.by_id[pred.id].counting = False
    carried: set[Key] = set()
    if found.gone:
        b.flush()
        carried = carried_keys(conn, b.caches.contents, art.repository_id,
                                     {art.id, *(p.id for p in retired)}, set(found.gone))
    facts = diff.ScanFacts(
        target.repo, ref.digest, plan.same,
        first_sight=plan.baseline is None and art.first_seen <= art.repo_first_seen,
        superseded_digests=tuple(p.digest for p in retired))
    outcome = diff.apply_scan(facts, found, known.rows, known.open, carried, rules, now)
    inserted = write_findings(conn, art.repository_id, known.rows, outcome.writes, now)
    if any(w.op is not diff.Write.INSERT for w in outcome.writes):
        b.findings.pop(art.repository_id, None)
    elif inserted:
        known.open.update(inserted)
        known.stale = True
    findings = known.rows
    if inserted and outcome.events and not facts.first_sight:
        findings = batch_findings(b, art.repository_id, rows=True).rows
    drafts = outcome.events
    if any(e.kind in (ChangeKind.NEW, ChangeKind.REOPENED) and e.key[0] for e in drafts):
        if b.kev is None:  # once per batch, in its transaction: the copy a feed refresh left
            from daemon.store import intel as store_intel

            b.kev = store_intel.kev_listing(conn)
        drafts = (*drafts, *diff.arrived_known_exploited(drafts, b.kev[0], b.kev[1]))
    return store_events(conn, target, drafts, scan_id, now,
                              findings=findings, tags=result.tags)


# --- shared writers -------------------------------------------------------------------
def write_findings(conn: Connection, repository_id: int, rows: Mapping[Key, StoredFinding],
    writes: Sequence[diff.FindingWrite], now: datetime,
) -> list[Key]:
    """Apply the finding writes of one decision; the keys it inserted."""
    inserts: list[dict[str, Any]] = []
    by_statement: dict[Any, list[dict[str, Any]]] = {}
    for w in writes:
        values = {"severity": int(w.severity), "fix_version": w.fix_version,
                  "installed_versions": w.installed_versions}
        if w.op is diff.Write.INSERT:
            inserts.append({
                "repository_id": repository_id, "vulnerability": w.key[0],
                "package": w.key[1], **values, "last_seen": now, "first_seen": now,
                "opened_at": now, "resolved_at": None, "resolved_reason": "",
                "ignored": bool(w.ignore_reason), "ignore_reason": w.ignore_reason})
            continue
        row_id = rows[w.key].id
        if w.op is diff.Write.MARK:
            statement, params = q.MARK_FINDING, {
                "_id": row_id, "ignored": bool(w.ignore_reason),
                "ignore_reason": w.ignore_reason}
        elif w.op is diff.Write.REOPEN:
            statement, params = q.REOPEN_FINDING, {
                "_id": row_id, **values, "last_seen": now, "opened_at": now,
                "resolved_at": None, "resolved_reason": "",
                "ignored": bool(w.ignore_reason), "ignore_reason": w.ignore_reason}
        else:
            resolved = w.op is diff.Write.RESOLVE
            statement, params = q.UPDATE_FINDING, {
                "_id": row_id, **values, "last_seen": now,
                "resolved_at": now if resolved else None,
                "resolved_reason": w.resolved_reason.value if w.resolved_reason else ""}
        by_statement.setdefault(statement, []).append(params)
    q.bulk_insert(conn, t.finding, inserts)
    for statement, params_list in by_statement.items():
        conn.execute(statement, params_list)
    return [(row["vulnerability"], row["package"]) for row in inserts]


def store_events(conn: Connection, target: Target, drafts: Sequence[diff.EventDraft],
    scan_id: int | None, now: datetime, *, findings: Mapping[Key, StoredFinding],
    tags: tuple[str, ...] = (),
) -> list[ChangeEvent]:
    if not drafts:
        return []
    rows = [{
        "finding_id": findings[p.key].id if p.key in findings else None,
        "repository_id": target.repository_id, "scan_id": scan_id,
        "kind": p.kind.value, "reason": p.reason.value, "at": now,
        "severity": int(p.severity),
        "previous_severity": None if p.previous_severity is None else int(p.previous_severity),
        "installed_version": p.installed, "previous_version": p.previous_version,
        "fix_version": p.fix, "digests": ",".join(p.digests), "count": p.count,
        "cvss_v3": p.cvss_v3, "cvss_vector": p.cvss_vector,
    } for p in drafts]
    conn.execute(q.INSERT_EVENT, rows)
    repo = target.repo
    return [ChangeEvent(
        kind=p.kind, reason=p.reason, finding=repo.finding(p.key), severity=p.severity,
        at=now, installed_version=p.installed, fix_version=p.fix,
        previous_severity=p.previous_severity, digests=p.digests, tags=tuple(tags),
        ignored=p.ignored, count=p.count, cvss_v3=p.cvss_v3, cvss_vector=p.cvss_vector)
        for p in drafts]
