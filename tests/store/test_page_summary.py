"""The overview's and the open-findings chart's counts, kept by the writer with the plan
(``store/summary.py``, ``plan_state.pages``): read back exactly as counted from the history,
never for another history (a new scan makes them stale, and the pages count again), on a real
SQLite file and on PostgreSQL, from real Trivy reports."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from daemon.ignores import IgnoreRules
from daemon.model import ScanResult, ScanState, Severity
from daemon.store import pages, plan
from daemon.store import summary as page_summary
from daemon.store.db import open_store
from daemon.store.pages import read_only_store
from tests.store.store_helpers import REG, at, ref
from tests.store.test_actions_counted import seed
from tests.web.test_plan_cache import rescan


def check(url: str, trivy: Path) -> None:
    seed(url, trivy)
    writer = open_store(url)
    reader = read_only_store(url)
    try:
        with reader.reading() as conn:
            assert plan.summary(conn) is None  # never counted: the pages count themselves
            before = page_summary.count(conn)
        (reg,) = before.registries
        assert (reg.name, reg.repositories, reg.artifacts, reg.failing) == (REG, 24, 48, 0)
        assert reg.open_by_severity[Severity.CRITICAL] > 0
        assert sum(o for per in before.days.values() for o, _ in per.values()) == sum(
            reg.open_by_severity.values())  # nothing resolved yet

        writer.build_plan(IgnoreRules(), at(0))
        with reader.reading() as conn:
            kept = plan.summary(conn)
            assert kept == before == pages.summary(conn)
            days = [at(-1).date(), at(0).date(), at(1).date()]
            opened = pages.open_by_day(conn, days)
            assert [opened[Severity.CRITICAL][0]] == [0]
            assert opened[Severity.CRITICAL][1] == reg.open_by_severity[Severity.CRITICAL]

        # A scan that resolves findings and one that fails: stale, counted again here.
        rescan(writer, trivy, at(1))
        failed_at = at(1) + timedelta(hours=1)
        writer.record_scan(ScanResult(ref("sha256:05a", repository="app-05"), ScanState.ERROR,
                                      "err-05a", "manual", started_at=failed_at,
                                      finished_at=failed_at, log_excerpt="adapter timeout"),
                           failed_at)
        with reader.reading() as conn:
            assert plan.summary(conn) is None
            after = pages.summary(conn)
            assert after == page_summary.count(conn) != before
            opened = pages.open_by_day(conn, [at(0).date(), at(1).date()])
        (reg_after,) = after.registries
        assert (reg_after.artifacts, reg_after.failing) == (48, 1)
        resolved = sum(r for per in after.days.values() for _, r in per.values())
        assert resolved > 0  # app-00's debian findings
        assert sum(v[1] for v in opened.values()) == sum(reg_after.open_by_severity.values())
        writer.build_plan(IgnoreRules(), at(1))
        with reader.reading() as conn:
            assert plan.summary(conn) == after
    finally:
        reader.close()
        writer.close()


def test_the_kept_summary_is_the_counted_one_until_history_changes(
        tmp_path: Path, trivy_fixtures: Path) -> None:
    check(f"sqlite:///{tmp_path / 'history.db'}", trivy_fixtures)


def test_the_kept_summary_is_the_same_on_postgresql(pg_url: str, trivy_fixtures: Path) -> None:
    check(pg_url, trivy_fixtures)
