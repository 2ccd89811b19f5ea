"""Each finding's carriers summarised by the writer (``store/carrier_summary.py``): on real
Trivy reports recorded into 24 repositories, the listing read from the summaries is the
listing read from the carriers (``carriers.carried``, what it was before), row for row and
byte for byte, after a rescan, a tag move, an image leaving the registry and an ignore rule
expiring; a change not yet summarised is read from its carriers (the triggers' marks), on
SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.config_types import IgnoreConfig
from daemon.harbor.reports import load_report_file
from daemon.ignores import IgnoreRules
from daemon.model import ScannerInfo, ScanResult, ScanState
from daemon.store import carrier_summary, carriers, findings
from daemon.store.db import Store, open_store
from daemon.store.findings import FindingQuery, FindingRow
from tests.store.store_helpers import REG, artifact, at, ref
from tests.store.test_actions_counted import FIXTURES, seed

EVERY = FindingQuery(include_ignored=True)


def listed(store: Store, monkeypatch: pytest.MonkeyPatch, *, live: bool,
           rules: IgnoreRules | None = None, days: float = 1,
           query: FindingQuery = EVERY) -> list[FindingRow]:
    """The listing as ``scanwatch findings`` reads it; ``live``: every finding read from its
    carriers, as before the summaries."""
    with monkeypatch.context() as m:
        if live:
            m.setattr(carrier_summary, "decoded", lambda *_: carrier_summary.LIVE)
        with store.reading() as conn:
            return list(findings.ordered(conn, query, rules=rules, now=at(days)))


def summarised(store: Store, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> list[FindingRow]:
    """The listing read from the summaries alone: reading a carrier fails."""
    def no_carriers(*_: Any, **__: Any) -> Any:
        raise AssertionError("a carrier was read")

    with monkeypatch.context() as m:
        m.setattr(carriers, "carried", no_carriers)
        return listed(store, monkeypatch, live=False, **kw)


def marked(store: Store) -> set[int]:
    with store.reading() as conn:
        return set(carrier_summary.marked(conn))


def scan(store: Store, digest: str, repository: str, report_name: Path, days: float) -> None:
    store.record_scan(ScanResult(
        ref(digest, repository=repository), ScanState.SUCCESS, f"re-{digest}-{days}", "manual",
        started_at=at(days), finished_at=at(days), scanner=ScannerInfo("Trivy", "", "0.58"),
        scanner_db_updated_at=at(days), report=load_report_file(report_name)), at(days))


def test_the_summaries_give_the_listing_the_carriers_give_through_every_change(
        url: str, trivy_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(url, trivy_fixtures)
    store = open_store(url)
    try:
        assert len(marked(store)) == 24  # recorded, not yet summarised
        before = listed(store, monkeypatch, live=True)
        assert listed(store, monkeypatch, live=False) == before
        assert store.refresh_carriers() == 24
        assert marked(store) == set()
        assert len(before) > 50
        assert summarised(store, monkeypatch) == before
        assert any(len(r.carriers) > 1 for r in before)  # two versions in one repository
        assert any(r.cvss_vector for r in before) and any(r.tags for r in before)
        # the same filtered and limited
        for query in (FindingQuery(fixable=True), FindingQuery(repository="app-03"),
                      FindingQuery(min_severity=max(r.severity for r in before))):
            assert summarised(store, monkeypatch, query=query) == listed(
                store, monkeypatch, live=True, query=query)

        def walk(days: float, *, gone: tuple[int, str] | None = None) -> None:
            """Tag "a" of app-03 (whose images carry different reports) on its image b,
            image a tagged "old"; ``gone``: that image left the registry."""
            store.record_inventory(REG, [
                artifact(f"sha256:{n:02d}{x}", *tags, repository=f"app-{n:02d}")
                for n in range(24) for x, tags in (
                    (("a", ("old",)), ("b", ("b", "a"))) if n == 3
                    else (("a", ("a",)), ("b", ("b",))))
                if (n, x) != gone], at(days))

        changes = [
            # a rescan with another report
            lambda: scan(store, "sha256:00a", "app-00", trivy_fixtures / FIXTURES[2], 2),
            lambda: walk(3),  # a tag move
            lambda: walk(4, gone=(2, "b")),  # app-02's image b leaves the registry
        ]
        for change in changes:
            kept = listed(store, monkeypatch, live=True)
            change()
            assert marked(store)  # the triggers saw it
            truth = listed(store, monkeypatch, live=True)
            assert truth != kept
            assert listed(store, monkeypatch, live=False) == truth  # read from the carriers
            store.refresh_carriers()
            assert marked(store) == set()
            assert summarised(store, monkeypatch) == truth

        # an ignore rule that expires: decided when read, the summaries untouched
        first = before[0].key
        rules = IgnoreRules(rules=(IgnoreConfig(
            "accepted", at(10).date(), vulnerability=first.vulnerability),))
        for days in (5, 30):
            shown = summarised(store, monkeypatch, rules=rules, days=days,
                               query=FindingQuery())
            assert shown == listed(store, monkeypatch, live=True, rules=rules, days=days,
                                   query=FindingQuery())
            assert any(r.key.vulnerability == first.vulnerability for r in shown) == (days > 10)
    finally:
        store.close()


def test_a_change_not_yet_summarised_is_read_from_its_carriers(
        url: str, trivy_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mark is what keeps a listing right between a change and the refresh: read without
    it, the summaries kept from before the rescan are wrong."""
    seed(url, trivy_fixtures)
    store = open_store(url)
    try:
        store.refresh_carriers()
        scan(store, "sha256:05a", "app-05", trivy_fixtures / FIXTURES[3], 2)
        scan(store, "sha256:05b", "app-05", trivy_fixtures / FIXTURES[3], 2)
        truth = listed(store, monkeypatch, live=True)
        assert listed(store, monkeypatch, live=False) == truth
        unmarked = carrier_summary.decoded
        monkeypatch.setattr(carrier_summary, "decoded",
                            lambda *row: unmarked(*row[:-1], None))
        with store.reading() as conn:
            stale = list(findings.ordered(conn, EVERY, rules=None, now=at(2)))
        assert stale != truth
    finally:
        store.close()


def test_a_refresh_keeps_a_mark_made_while_it_ran(
        url: str, trivy_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository marked again after the refresh read its mark stays marked: the mark is
    cleared only at the counter the refresh read."""
    seed(url, trivy_fixtures)
    store = open_store(url)
    try:
        rebuild = carrier_summary.rebuild
        changed: list[int] = []

        def meanwhile(conn: Any, repositories: Any) -> None:
            rebuild(conn, repositories)
            if not changed:  # a change to the first repository, as its trigger marks it
                changed.append(int(repositories[0]))
                conn.exec_driver_sql("UPDATE carrier_dirty SET version = version + 1"
                                     f" WHERE repository_id = {changed[0]}")

        monkeypatch.setattr(carrier_summary, "rebuild", meanwhile)
        store.refresh_carriers()
        assert marked(store) == set(changed)
        monkeypatch.setattr(carrier_summary, "rebuild", rebuild)
        assert store.refresh_carriers() == 1
        assert marked(store) == set()
    finally:
        store.close()


def test_the_json_listing_is_byte_for_byte_the_same_from_the_summaries(
        tmp_path: Path, trivy_fixtures: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    seed(url, trivy_fixtures)

    def json_listing() -> bytes:
        proc = subprocess.run([sys.executable, "-m", "daemon", "findings", "--database", url,
                               "--format", "json", "--include-ignored"],
                              capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    from_carriers = json_listing()
    store = open_store(url)
    try:
        assert store.refresh_carriers() == 24
    finally:
        store.close()
    assert len(from_carriers) > 20_000
    assert json_listing() == from_carriers


def test_a_finished_run_summarises_what_it_changed(tmp_path: Path, trivy_fixtures: Path
                                                   ) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    seed(url, trivy_fixtures)
    store = open_store(url)
    try:
        run = store.record_run_start("nightly", at(1))
        store.record_run_finish(run, at(1) + timedelta(minutes=5), "ok")
        assert marked(store) == set()
        with store.reading() as conn:
            kept = conn.execute(carrier_summary.carrier_summary.select()).all()
        assert len(kept) > 50
    finally:
        store.close()
