"""``record_scans`` stores a batch in one transaction exactly as ``record_scan`` one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.model import ChangeEvent, ScanResult, ScanState
from daemon.store.db import Store, open_store
from tests.store.store_helpers import REG, artifact, at, failure, success

BASE = ["CVE-1:openssl:3.0.13:3.0.15:Critical", "CVE-2:zlib:1.2.13::High"]
LESS = ["CVE-2:zlib:1.2.13::High"]
MORE = [*BASE, "CVE-3:curl:8.0::Medium"]

# (id, inventory before the batch as (digest, tags…), the batch)
CASES: list[tuple[str, list[tuple[str, ...]], list[ScanResult]]] = [
    ("first_sight_of_several_images_and_a_rescan_in_one_batch",
     [("sha256:a", "1.0"), ("sha256:b", "2.0")],
     [success("sha256:a", BASE, at(0)), success("sha256:b", MORE, at(0)),
      success("sha256:a", BASE, at(0), report_id="again")]),
    ("the_same_digest_changing_twice_in_one_batch",
     [("sha256:a", "1.0")],
     [success("sha256:a", BASE, at(0)), success("sha256:a", LESS, at(0), report_id="r2"),
      success("sha256:a", MORE, at(0), report_id="r3")]),
    ("failures_between_successes_of_one_digest",
     [("sha256:a", "1.0")],
     [success("sha256:a", BASE, at(0)), failure("sha256:a", at(0)), failure("sha256:a", at(0)),
      failure("sha256:a", at(0), ScanState.STOPPED),
      success("sha256:a", BASE, at(0), report_id="r")]),
    ("a_failure_after_changes_in_one_batch",
     [("sha256:a", "1.0")],
     [success("sha256:a", BASE, at(0)), success("sha256:a", MORE, at(0), report_id="r2"),
      failure("sha256:a", at(0))]),
    ("an_image_unknown_to_the_inventory",
     [("sha256:a", "1.0")],
     [success("sha256:z", BASE, at(0)), success("sha256:a", LESS, at(0))]),
]


def _dump(store: Store) -> dict[str, list[Any]]:
    with store.engine.connect() as conn:
        return {name: [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY id")]
                for name in ("artifact", "report_content", "scan", "finding", "finding_event")}


def _brief(events: list[ChangeEvent]) -> list[tuple[str, str, str, int]]:
    return [(e.kind.value, e.reason.value, e.finding.vulnerability, e.count) for e in events]


@pytest.mark.parametrize(("inventory", "batch"),
                         [pytest.param(i, b, id=n) for n, i, b in CASES])
def test_a_batch_records_what_one_by_one_records(
    tmp_path: Path, inventory: list[tuple[str, ...]], batch: list[ScanResult],
) -> None:
    one, many = (open_store(f"sqlite:///{tmp_path / name}") for name in ("one.db", "many.db"))
    try:
        for store in (one, many):
            store.record_inventory(REG, [artifact(d, *tags) for d, *tags in inventory], at(0))
        singly = [e for result in batch for e in one.record_scan(result, at(0))]
        together = many.record_scans(batch, at(0))
        assert _brief(together) == _brief(singly)
        assert together  # every case brings at least one change
        assert _dump(many) == _dump(one)
    finally:
        one.close()
        many.close()


def test_a_rebuild_and_its_predecessor_in_one_batch_fix_what_the_rebuild_dropped(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        store.record_inventory(REG, [artifact("sha256:a", "latest")], at(0))
        store.record_scan(success("sha256:a", BASE, at(0)), at(0))
        store.record_inventory(REG, [artifact("sha256:a"), artifact("sha256:b", "latest")], at(1))
        events = store.record_scans([success("sha256:a", BASE, at(1), report_id="x"),
                                     success("sha256:b", LESS, at(1))], at(1))
        assert _brief(events) == [("fixed", "fixed_by_rebuild", "CVE-1", 1)]
        assert [f.key.vulnerability for f in store.open_findings()] == ["CVE-2"]
    finally:
        store.close()
