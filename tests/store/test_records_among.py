"""What a run reads of a batch of its walk: the scan records of its digests and the stored
report ids among its reports, each the registry's whole answer restricted to that batch.

A run selects a page of the walk at a time and imports a batch at a time (issue 11), so each
batch's read must answer what the one read of everything answered: a digest's record is its
latest scan anywhere in the registry (the same image pushed to two projects), never another
registry's, never an artifact's that left. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import replace

from daemon.model import ArtifactRef, ScanState
from daemon.store.db import open_store
from tests.store.store_helpers import REG, artifact, at, failure, success

SHARED, ONLY_HERE, FAILED, GONE, ELSEWHERE = (f"sha256:{c * 64}" for c in "abcde")


def in_(registry: str, project: str, repository: str, digest: str) -> ArtifactRef:
    return ArtifactRef(registry, project, repository, digest)


def test_a_batch_reads_what_the_whole_registry_says_of_its_digests(url: str) -> None:
    store = open_store(url)
    try:
        # The same image in two projects: scanned fine in one, failed later in the other.
        store.record_scan(success(SHARED, ["CVE-1:openssl:1.0"], at(0)), at(0))
        store.record_scan(replace(failure(SHARED, at(2)), ref=in_(REG, "base", "os", SHARED)),
                          at(2))
        store.record_scan(success(ONLY_HERE, [], at(1)), at(1))
        store.record_scan(failure(FAILED, at(1)), at(1))
        # Another registry's later scans of the same digests count for that registry only.
        store.record_scan(replace(success(ONLY_HERE, [], at(5), report_id="stage-report"),
                                  ref=in_("stage", "payments", "api", ONLY_HERE)), at(5))
        store.record_scan(replace(success(ELSEWHERE, [], at(5)),
                                  ref=in_("stage", "payments", "api", ELSEWHERE)), at(5))
        # An artifact that left the registry has no record any more.
        store.record_scan(success(GONE, [], at(1)), at(1))
        walk = [artifact(d, "t") for d in (SHARED, ONLY_HERE, FAILED)]
        walk.append(replace(artifact(SHARED, "t"), ref=in_(REG, "base", "os", SHARED)))
        store.record_inventory(REG, walk, at(3))

        whole = store.scan_records(REG)
        wanted = [SHARED, ONLY_HERE, FAILED, GONE, ELSEWHERE, "sha256:never"]
        batch = store.scan_records(REG, wanted)

        assert batch == {d: r for d, r in whole.items() if d in wanted}
        assert sorted(batch) == sorted([SHARED, ONLY_HERE, FAILED])
        assert batch[SHARED].state is ScanState.ERROR  # the latest, from the other project
        assert batch[SHARED].last_success_at is None  # that artifact's own success: none
        assert batch[ONLY_HERE].finished_at == at(1)  # not the other registry's at(5)
        assert store.scan_records(REG, []) == {}

        reports = [r.report_id for r in whole.values()] + ["stage-report", "nowhere"]
        assert store.known_reports_among(REG, reports) == {r.report_id for r in whole.values()}
        assert store.known_reports_among("stage", reports) == {"stage-report"}
    finally:
        store.close()
