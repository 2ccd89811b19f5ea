"""The history rules, as tables: what each scan, push, tag move or deletion does to findings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.model import ChangeEvent, ScanState
from daemon.store.db import Store, open_store
from tests.store.store_helpers import REG, artifact, at, failure, success

Step = Callable[[Store], list[ChangeEvent]]


def inv(*arts: tuple[str, ...], day: float) -> Step:
    """A full walk listing artifacts as (digest, tag, tag…)."""
    def step(store: Store) -> list[ChangeEvent]:
        delta = store.record_inventory(REG, [artifact(d, *tags) for d, *tags in arts], at(day))
        return store.resolve_removed(REG, delta.removed, at(day))
    return step


def scan(digest: str, specs: list[str], day: float) -> Step:
    return lambda store: store.record_scan(success(digest, specs, at(day)), at(day))


def fail(digest: str, day: float, state: ScanState = ScanState.ERROR) -> Step:
    return lambda store: store.record_scan(failure(digest, at(day), state), at(day))


def brief(events: list[ChangeEvent]) -> list[tuple[str, str, str]]:
    return sorted((e.kind.value, e.reason.value, e.finding.vulnerability or f"x{e.count}")
                  for e in events)


BASE = ["CVE-1:openssl:3.0.13:3.0.15:Critical", "CVE-2:zlib:1.2.13::High"]

CASES: list[tuple[str, list[Step], list[tuple[str, str, str]], list[str]]] = [
    ("first_sight_is_one_summary_not_news",
     [inv(("sha256:a", "1.0"), day=0), scan("sha256:a", BASE, 0)],
     [("new", "first_sight", "x2")], ["CVE-1", "CVE-2"]),
    ("unchanged_rescan_changes_nothing",
     [inv(("sha256:a", "1.0"), day=0), scan("sha256:a", BASE, 0), scan("sha256:a", BASE, 1)],
     [], ["CVE-1", "CVE-2"]),
    ("advisory_published_on_same_digest_is_new",
     [inv(("sha256:a", "1.0"), day=0), scan("sha256:a", BASE, 0),
      scan("sha256:a", [*BASE, "CVE-3:curl:8.0::Medium"], 1)],
     [("new", "advisory_published", "CVE-3")], ["CVE-1", "CVE-2", "CVE-3"]),
    ("advisory_withdrawn_on_same_digest_fixes",
     [inv(("sha256:a", "1.0"), day=0), scan("sha256:a", BASE, 0),
      scan("sha256:a", BASE[:1], 1)],
     [("fixed", "advisory_withdrawn", "CVE-2")], ["CVE-1"]),
    ("rebuild_that_drops_it_is_fixed_by_rebuild",
     [inv(("sha256:a", "latest"), day=0), scan("sha256:a", BASE, 0),
      inv(("sha256:a",), ("sha256:b", "latest"), day=1),
      scan("sha256:b", ["CVE-2:zlib:1.2.13::High"], 1)],
     [("fixed", "fixed_by_rebuild", "CVE-1")], ["CVE-2"]),
    ("rebuild_still_carrying_it_is_not_new",
     [inv(("sha256:a", "latest"), day=0), scan("sha256:a", BASE, 0),
      inv(("sha256:a",), ("sha256:b", "latest"), day=1),
      scan("sha256:b", ["CVE-1:openssl:3.0.14:3.0.15:Critical", "CVE-2:zlib:1.2.13::High"], 1)],
     [], ["CVE-1", "CVE-2"]),
    ("push_bringing_a_new_cve_is_new_image",
     [inv(("sha256:a", "latest"), day=0), scan("sha256:a", BASE, 0),
      inv(("sha256:a",), ("sha256:b", "latest"), day=1),
      scan("sha256:b", [*BASE, "CVE-9:glibc:2.36::High"], 1)],
     [("new", "new_image", "CVE-9")], ["CVE-1", "CVE-2", "CVE-9"]),
    ("other_tag_still_carrying_it_keeps_it_open",
     [inv(("sha256:a", "1.0"), ("sha256:b", "2.0"), day=0), scan("sha256:a", BASE, 0),
      scan("sha256:b", BASE, 0), scan("sha256:a", BASE[1:], 1)],
     [], ["CVE-1", "CVE-2"]),
    ("image_removed_fixes_what_only_it_carried",
     [inv(("sha256:a", "1.0"), ("sha256:b", "2.0"), day=0), scan("sha256:a", BASE, 0),
      scan("sha256:b", BASE[1:], 0), inv(("sha256:b", "2.0"), day=1)],
     [("fixed", "image_removed", "CVE-1")], ["CVE-2"]),
    ("tag_deleted_untags_the_image_and_it_stops_counting",
     [inv(("sha256:a", "1.0"), ("sha256:b", "2.0"), day=0), scan("sha256:a", BASE, 0),
      scan("sha256:b", BASE[1:], 0), inv(("sha256:a",), ("sha256:b", "2.0"), day=1)],
     [("fixed", "image_removed", "CVE-1")], ["CVE-2"]),
    ("reopened_when_a_fixed_one_comes_back",
     [inv(("sha256:a", "1.0"), day=0), scan("sha256:a", BASE, 0),
      scan("sha256:a", BASE[:1], 1), scan("sha256:a", BASE, 2)],
     [("reopened", "reopened", "CVE-2")], ["CVE-1", "CVE-2"]),
    ("error_after_success_resolves_nothing",
     [inv(("sha256:a", "1.0"), day=0), scan("sha256:a", BASE, 0), fail("sha256:a", 1)],
     [], ["CVE-1", "CVE-2"]),
    ("stopped_after_success_resolves_nothing",
     [inv(("sha256:a", "1.0"), day=0), scan("sha256:a", BASE, 0),
      fail("sha256:a", 1, ScanState.STOPPED)],
     [], ["CVE-1", "CVE-2"]),
    ("pushed_tag_with_unscanned_successor_keeps_old_findings_open",
     [inv(("sha256:a", "latest"), day=0), scan("sha256:a", BASE, 0),
      inv(("sha256:a",), ("sha256:b", "latest"), day=1), fail("sha256:b", 1)],
     [], ["CVE-1", "CVE-2"]),
    ("fix_released_then_rescored",
     [inv(("sha256:a", "1.0"), day=0), scan("sha256:a", BASE, 0),
      scan("sha256:a", ["CVE-1:openssl:3.0.13:3.0.15:Critical", "CVE-2:zlib:1.2.13:1.2.14:High"],
           1),
      scan("sha256:a", ["CVE-1:openssl:3.0.13:3.0.15:Medium", "CVE-2:zlib:1.2.13:1.2.14:High"],
           2)],
     [("severity_changed", "rescored", "CVE-1")], ["CVE-1", "CVE-2"]),
    ("new_image_in_a_known_repository_without_a_predecessor_announces_only_new_ones",
     [inv(("sha256:a", "1.0"), day=0), scan("sha256:a", BASE, 0),
      inv(("sha256:a", "1.0"), ("sha256:c", "feature"), day=1),
      scan("sha256:c", [*BASE, "CVE-5:musl:1.2::Low"], 1)],
     [("new", "new_image", "CVE-5")], ["CVE-1", "CVE-2", "CVE-5"]),
]


@pytest.mark.parametrize(("steps", "last_events", "open_after"),
                         [pytest.param(s, e, o, id=i) for i, s, e, o in CASES])
def test_it_applies_the_history_rules(
    tmp_path: Path, steps: list[Step], last_events: list[tuple[str, str, str]],
    open_after: list[str],
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        events: list[ChangeEvent] = []
        for step in steps:
            events = step(store)
        assert brief(events) == last_events
        assert sorted(f.key.vulnerability for f in store.open_findings()) == open_after
    finally:
        store.close()


def test_an_unchanged_rescan_only_confirms_the_last_scan(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        inv(("sha256:a", "1.0"), day=0)(store)
        scan("sha256:a", BASE, 0)(store)
        def counts() -> dict[str, Any]:
            with store.engine.connect() as conn:
                return {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                        for t in ("scan", "report_content", "finding", "finding_event")}
        before = counts()
        for day in (1, 2, 3):
            assert scan("sha256:a", BASE, day)(store) == []
        assert counts() == before
        entries = store.history(REG, "payments", "api")
        assert [(e.status, e.confirmations) for e in entries] == [("Success", 4)]
        assert entries[0].last_confirmed_at == at(3)
        (finding, *_) = store.open_findings()
        assert finding.last_seen == at(3) and finding.first_seen == at(0)
    finally:
        store.close()


def test_the_same_report_content_is_stored_once_across_artifacts(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        inv(("sha256:a", "1.0"), ("sha256:b", "2.0"), day=0)(store)
        scan("sha256:a", BASE, 0)(store)
        scan("sha256:b", BASE, 0)(store)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM report_content").scalar() == 1
            assert conn.exec_driver_sql("SELECT count(*) FROM scan").scalar() == 2
        (f1, f2) = store.open_findings()
        assert f1.digests == ("sha256:a", "sha256:b") and f1.tags == ("1.0", "2.0")
    finally:
        store.close()


def test_scan_records_count_consecutive_failures_and_keep_the_last_success(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        inv(("sha256:a", "1.0"), day=0)(store)
        scan("sha256:a", BASE, 0)(store)
        fail("sha256:a", 1)(store)
        fail("sha256:a", 2)(store)
        record = store.scan_records(REG)["sha256:a"]
        assert record.state is ScanState.ERROR
        assert record.consecutive_failures == 2
        assert record.last_success_at == at(0)
        assert record.scanner_db_updated_at == at(0)
        ids = store.known_report_ids(REG)
        assert success("sha256:a", BASE, at(0)).report_id in ids
        scan("sha256:a", BASE, 3)(store)
        assert store.scan_records(REG)["sha256:a"].consecutive_failures == 0
    finally:
        store.close()


def test_inventory_reports_new_moved_and_removed(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        first = store.record_inventory(REG, [artifact("sha256:a", "latest", "1.0")], at(0))
        assert first.new_digests == ("sha256:a",)
        second = store.record_inventory(
            REG, [artifact("sha256:b", "latest"), artifact("sha256:c", "1.0")], at(1))
        assert sorted(second.new_digests) == ["sha256:b", "sha256:c"]
        assert sorted((m.tag, m.old_digest, m.new_digest) for m in second.moved) == [
            ("1.0", "sha256:a", "sha256:c"), ("latest", "sha256:a", "sha256:b")]
        assert second.removed_digests == ("sha256:a",)
        assert store.record_inventory(REG, [artifact("sha256:b", "latest"),
                                            artifact("sha256:c", "1.0")], at(2)).moved == ()
    finally:
        store.close()


def test_index_children_are_stored_with_a_parent_link(tmp_path: Path) -> None:
    from dataclasses import replace

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        index = replace(artifact("sha256:idx", "latest"), children=("sha256:amd", "sha256:arm"))
        delta = store.record_inventory(REG, [index], at(0))
        assert delta.new_digests == ("sha256:idx",)
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT digest, parent_digest FROM artifact ORDER BY digest").all()
        assert [tuple(r) for r in rows] == [("sha256:amd", "sha256:idx"),
                                           ("sha256:arm", "sha256:idx"), ("sha256:idx", None)]
    finally:
        store.close()


def test_history_of_a_tag_follows_the_digests_it_pointed_to(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        for step in [inv(("sha256:a", "latest"), ("sha256:z", "other"), day=0),
                     scan("sha256:a", BASE, 0), scan("sha256:z", BASE[1:], 0),
                     inv(("sha256:a",), ("sha256:b", "latest"), ("sha256:z", "other"), day=1),
                     scan("sha256:b", BASE[1:], 1)]:
            step(store)
        entries = store.history(REG, "payments", "api", "latest")
        assert [e.digest for e in entries] == ["sha256:a", "sha256:b"]
        assert [(c.kind.value, c.reason.value) for c in entries[1].changes] == [
            ("fixed", "fixed_by_rebuild")]
    finally:
        store.close()


def test_a_finding_at_two_versions_gets_one_event_and_one_fix_per_version(tmp_path):
    from daemon.model import ChangeKind
    from daemon.store.db import open_store
    from tests.store.store_helpers import REG, artifact, at, success

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    store.record_inventory(REG, [artifact("sha256:a", "1.0"), artifact("sha256:b", "2.0")], at(0))
    store.record_scans([success("sha256:a", ["CVE-1:zlib:1.0"], at(0)),
                        success("sha256:b", ["CVE-1:zlib:1.1"], at(0))], at(0))
    # The advisory gains fixes: 1.0 is fixed in 1.1, but 1.1 only in 1.2.
    events = store.record_scans([success("sha256:a", ["CVE-1:zlib:1.0:1.1"], at(1)),
                                 success("sha256:b", ["CVE-1:zlib:1.1:1.2"], at(1))], at(1))
    fixes = sorted((e.installed_version, e.fix_version) for e in events
                   if e.kind is ChangeKind.FIX_AVAILABLE)
    assert fixes == [("1.0", "1.1"), ("1.1", "1.2")]
    (row,) = store.open_findings()
    assert row.fix_version == "1.2", "the finding's fix must cover every installed version"
