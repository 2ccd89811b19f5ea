"""Benchmark: history ingest at scale against raw sqlite3 inserts of the same occurrence rows.

2,000 artifacts (200 repositories × 10) × 300 occurrences each. Artifacts of a repository share
its package set, each with a few versions of its own (so every report is a distinct content).
Steps: first ingest, an unchanged rescan of everything, a rescan with 2% of artifacts changed.
Each step calls the Store the way a run imports reports (daemon/scan/run.py ``import_reports``
then selection): per batch of ``IMPORT_BATCH``, ``known_reports_among`` (which of its report
ids are stored) and ``record_scans``, then ``scan_records``; all are inside the step's time.
Last, for information (no target), one more unchanged rescan through ``record_scan``, one
transaction per result, as the scan queue records the scans it triggered.
Reference: raw ``sqlite3.executemany`` of the same 600,000 occurrence rows into a plain table,
in this process, once before and once after the store steps; the faster of the two is used.

Targets: first ingest ≤ 2 × raw; unchanged rescan ≤ 0.5 × raw; peak RSS ≤ 250 MB; an unchanged
rescan grows the database file by ≤ 1% of its size after the first ingest.

    python bench/history.py [--repositories 200] [--artifacts 10] [--occurrences 300]
"""

from __future__ import annotations

import argparse
import random
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.model import (  # noqa: E402
    Artifact,
    ArtifactRef,
    Occurrence,
    Report,
    ScannerInfo,
    ScanResult,
    ScanState,
    Severity,
    Tag,
)
from daemon.scan.run import IMPORT_BATCH  # noqa: E402
from daemon.store.db import Store, open_store  # noqa: E402

T0 = datetime(2026, 3, 1, tzinfo=UTC)
BATCH = IMPORT_BATCH  # what import_reports hands record_scans at once


def repo_sets(repos: int, per_report: int, seed: int = 7) -> list[list[Occurrence]]:
    rnd = random.Random(seed)
    sevs = list(Severity)
    out = []
    for r in range(repos):
        occs = [Occurrence(f"CVE-2025-{r:03d}{i:04d}", f"pkg{r}-{i % 120}", f"1.{i % 7}.0",
                           f"1.{i % 7}.1" if i % 3 else "", rnd.choice(sevs))
                for i in range(per_report)]
        out.append(occs)
    return out


def report_of(base: list[Occurrence], artifact: int, changed: int = 0) -> tuple[Occurrence, ...]:
    occs = list(base)
    for j in range(3):  # each artifact installs a few versions of its own
        k = (artifact * 7 + j * 31) % len(occs)
        o = occs[k]
        occs[k] = Occurrence(o.id, o.package, f"{o.version}-a{artifact}", o.fix_version,
                             o.severity)
    if changed:  # a scanner DB update: one CVE more, one fewer
        occs[-1] = Occurrence(f"CVE-2026-{changed:06d}", occs[-1].package, "9.9", "",
                              Severity.HIGH)
    return tuple(sorted(occs, key=lambda o: o.key))


def results(sets: list[list[Occurrence]], per_repo: int, when: datetime, tag: str,
            changed: set[tuple[int, int]] = frozenset()) -> Iterator[list[ScanResult]]:  # type: ignore[assignment]
    batch: list[ScanResult] = []
    for r, base in enumerate(sets):
        for a in range(per_repo):
            ref = ArtifactRef("bench", f"proj{r % 20}", f"repo{r}", f"sha256:{r:04d}{a:04d}")
            occs = report_of(base, a, changed=r * 100 + a + 1 if (r, a) in changed else 0)
            batch.append(ScanResult(
                ref, ScanState.SUCCESS, f"{tag}-{r}-{a}", "schedule:bench", started_at=when,
                finished_at=when, scanner=ScannerInfo("Trivy", "", "0.58"),
                scanner_db_updated_at=when, report=Report("Trivy", "0.58", when, occs)))
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def db_size(path: Path, store: Store) -> int:
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


READS: list[float] = []  # per step: seconds in known_reports_among + scan_records


def run_step(store: Store, batches: list[list[ScanResult]], when: datetime) -> tuple[float, int]:
    """The store calls of one run's report import; (seconds, events)."""
    start = time.perf_counter()
    before = store.last_scan_id()
    reads = 0.0
    events = 0
    for batch in batches:
        asked = time.perf_counter()
        known = store.known_reports_among("bench", [r.report_id for r in batch], before)
        reads += time.perf_counter() - asked
        todo = [r for r in batch if r.report_id not in known]
        events += len(store.record_scans(todo, when))
    mark = time.perf_counter()
    records = store.scan_records("bench")
    end = time.perf_counter()
    READS.append(reads + end - mark)
    assert len(records) == sum(len(b) for b in batches)
    return end - start, events


def raw_insert(path: Path, sets: list[list[Occurrence]], per_repo: int) -> float:
    conn = sqlite3.connect(path)
    for p in ("journal_mode=WAL", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {p}")
    conn.execute("CREATE TABLE occurrence (scan INTEGER, id TEXT, package TEXT, version TEXT, "
                 "fix_version TEXT, severity INTEGER, status TEXT, cvss REAL)")
    rows_by_artifact = [
        [(r * per_repo + a, o.id, o.package, o.version, o.fix_version, int(o.severity), o.status,
          o.cvss_v3) for o in report_of(base, a)]
        for r, base in enumerate(sets) for a in range(per_repo)]
    start = time.perf_counter()
    with conn:
        for rows in rows_by_artifact:
            conn.executemany("INSERT INTO occurrence VALUES (?,?,?,?,?,?,?,?)", rows)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repositories", type=int, default=200)
    ap.add_argument("--artifacts", type=int, default=10)
    ap.add_argument("--occurrences", type=int, default=300)
    args = ap.parse_args()
    sets = repo_sets(args.repositories, args.occurrences)
    total = args.repositories * args.artifacts
    with tempfile.TemporaryDirectory() as tmp:
        raw_before = raw_insert(Path(tmp) / "raw1.db", sets, args.artifacts)
        path = Path(tmp) / "history.db"
        store = open_store(f"sqlite:///{path}")
        inventory = [
            Artifact(ArtifactRef("bench", f"proj{r % 20}", f"repo{r}", f"sha256:{r:04d}{a:04d}"),
                     "IMAGE", tags=(Tag(f"v{a}"),), scannable=True)
            for r in range(args.repositories) for a in range(args.artifacts)]
        start = time.perf_counter()
        store.record_inventory("bench", inventory, T0)
        t_inventory = time.perf_counter() - start

        batches = list(results(sets, args.artifacts, T0, "r1"))  # inputs are not store work
        t_first, events = run_step(store, batches, T0)
        size_first = db_size(path, store)

        when = T0 + timedelta(days=1)
        batches = list(results(sets, args.artifacts, when, "r2"))
        t_same, unchanged = run_step(store, batches, when)
        size_same = db_size(path, store)

        rnd = random.Random(11)
        picks = {(rnd.randrange(args.repositories), rnd.randrange(args.artifacts))
                 for _ in range(total * 2 // 100)}
        when = T0 + timedelta(days=2)
        batches = list(results(sets, args.artifacts, when, "r3", picks))
        t_changed, changed = run_step(store, batches, when)
        size_changed = db_size(path, store)

        when = T0 + timedelta(days=3)
        batches = list(results(sets, args.artifacts, when, "r4", picks))
        start = time.perf_counter()
        singly = sum(len(store.record_scan(r, when)) for b in batches for r in b)
        t_singly = time.perf_counter() - start
        size_singly = db_size(path, store)
        store.close()
        del batches  # the inputs of the last step: not part of the reference's memory
        raw_after = raw_insert(Path(tmp) / "raw2.db", sets, args.artifacts)
    raw = min(raw_before, raw_after)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    growth = (size_same - size_first) / size_first * 100
    print(f"artifacts {total} × occurrences {args.occurrences} = {total * args.occurrences} rows")
    print(f"raw sqlite3 executemany of the same rows: {raw:.2f} s  (before {raw_before:.2f}, "
          f"after {raw_after:.2f}: the faster counts)")
    print(f"inventory walk:          {t_inventory:.2f} s")
    reads = "of which reads"
    print(f"first ingest:            {t_first:.2f} s  ({events} events; {reads} {READS[0]:.2f} s)")
    print(f"unchanged rescan:        {t_same:.2f} s  ({unchanged} events; "
          f"{reads} {READS[1]:.2f} s)")
    print(f"rescan, {len(picks)} changed:    {t_changed:.2f} s  ({changed} events; "
          f"{reads} {READS[2]:.2f} s)")
    print(f"unchanged rescan, one record_scan per result (the scan queue's path, no target): "
          f"{t_singly:.2f} s  ({singly} events; {t_singly / raw:.2f} × raw; db "
          f"{(size_singly - size_changed) / size_changed * 100:+.2f}%)")
    print(f"db size after first ingest {size_first / 1e6:.2f} MB, after unchanged rescan "
          f"{size_same / 1e6:.2f} MB (+{growth:.2f}%), after changes {size_changed / 1e6:.2f} MB")
    print(f"peak RSS {rss_mb:.0f} MB (target ≤ 250)")
    print(f"ratios: first ingest / raw = {t_first / raw:.2f} (target ≤ 2.0); "
          f"unchanged rescan / raw = {t_same / raw:.2f} (target ≤ 0.5); "
          f"growth per unchanged rescan = {growth:.2f}% (target ≤ 1%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
