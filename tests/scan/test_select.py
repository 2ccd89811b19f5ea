"""Selection policy: lanes, their order, filters, backoff and the budget (pure, table-driven)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from daemon.config_types import ScheduleConfig
from daemon.model import Artifact, ArtifactRef, ScanOverview, ScanRecord, ScanState, Tag
from daemon.scan.select import pull_times, select

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DB_NEW = NOW - timedelta(days=4, hours=12)
ALL = ("changed", "unscanned", "failed", "db_updated", "stale")


def schedule(**kw: object) -> ScheduleConfig:
    base: dict[str, object] = {"name": "s", "cron": "0 2 * * *", "registries": ("r",),
                               "select": ALL}
    base.update(kw)
    return ScheduleConfig(**base)  # type: ignore[arg-type]


def art(
    digest: str,
    state: ScanState | None = None,
    *,
    ended: datetime | None = None,
    pushed: datetime | None = None,
    pulled: datetime | None = None,
    type_: str = "IMAGE",
    scannable: bool = True,
    tags: tuple[str, ...] = ("latest",),
    report_id: str | None = None,
) -> Artifact:
    ov = None
    if state is not None:
        ov = ScanOverview(report_id=report_id or f"rep-{digest}", state=state, end_time=ended)
    return Artifact(
        ref=ArtifactRef("r", "p", "app", digest), type=type_,
        tags=tuple(Tag(t) for t in tags), push_time=pushed or NOW - timedelta(days=30),
        pull_time=pulled, scannable=scannable, overview=ov,
    )


def scanned_and_pulled(digest: str, pulled: datetime, tag_pulled: datetime | None = None,
                       ended: bool = True) -> Artifact:
    """Scanned from 5 days and 1 minute ago to 5 days ago (before the DB update; with no end
    time unless ``ended``), last pulled at ``pulled``; its tag at ``tag_pulled``."""
    scan = ScanOverview(report_id=f"rep-{digest}", state=ScanState.SUCCESS,
                        start_time=NOW - timedelta(days=5, minutes=1),
                        end_time=NOW - timedelta(days=5) if ended else None)
    return Artifact(ref=ArtifactRef("r", "p", "app", digest), type="IMAGE",
                    tags=(Tag("latest", pull_time=tag_pulled),),
                    push_time=NOW - timedelta(days=30), pull_time=pulled, scannable=True,
                    overview=scan)


def rec(digest: str, state: ScanState, **kw: object) -> ScanRecord:
    return ScanRecord(digest=digest, state=state, report_id=f"rep-{digest}", **kw)  # type: ignore[arg-type]


CASES = [
    pytest.param([art("a")], {}, {"a"}, schedule(), [("a", "changed")],
                 id="new-unscanned-is-changed"),
    pytest.param([art("a")], {}, set(), schedule(), [("a", "unscanned")], id="old-unscanned"),
    pytest.param(
        [art("old"), art("fresh2", pushed=NOW - timedelta(hours=2)),
         art("fresh1", pushed=NOW - timedelta(hours=1))],
        {}, {"fresh1", "fresh2"}, schedule(),
        [("fresh1", "changed"), ("fresh2", "changed"), ("old", "unscanned")],
        id="fresh-pushes-first-then-unscanned"),
    pytest.param([art("a", ScanState.SUCCESS, ended=NOW - timedelta(hours=2))], {}, set(),
                 schedule(), [], id="recent-success-needs-nothing"),
    pytest.param([art("a", ScanState.SUCCESS, ended=NOW - timedelta(days=8))],
                 {"a": rec("a", ScanState.SUCCESS, scanner_db_updated_at=DB_NEW)}, set(),
                 schedule(), [("a", "stale")], id="stale-after-7d"),
    pytest.param([art("a", ScanState.SUCCESS, ended=NOW - timedelta(days=8))], {}, set(),
                 schedule(select=("changed", "unscanned")), [], id="lane-not-selected"),
    pytest.param([art("a", ScanState.SUCCESS, ended=DB_NEW + timedelta(minutes=1))], {}, set(),
                 schedule(), [], id="scanned-after-db-update"),
    pytest.param([art("a", ScanState.SUCCESS, ended=NOW - timedelta(days=5))], {}, set(),
                 schedule(), [("a", "db_updated")], id="db-newer-than-last-scan"),
    pytest.param(
        [art("a", ScanState.SUCCESS, ended=NOW - timedelta(days=5))],
        {"a": rec("a", ScanState.SUCCESS, scanner_db_updated_at=DB_NEW)}, set(), schedule(), [],
        id="record-says-scanned-with-current-db"),
    pytest.param([art("a", ScanState.ERROR, ended=NOW - timedelta(hours=2))], {}, set(),
                 schedule(), [("a", "failed")], id="failed-past-backoff"),
    pytest.param([art("a", ScanState.ERROR, ended=NOW - timedelta(minutes=10))], {}, set(),
                 schedule(), [], id="failed-within-backoff"),
    pytest.param(
        [art("a", ScanState.ERROR, ended=NOW - timedelta(hours=3))],
        {"a": rec("a", ScanState.ERROR, consecutive_failures=3)}, set(), schedule(), [],
        id="backoff-doubles-per-failure"),
    pytest.param(
        [art("a", ScanState.STOPPED, ended=NOW - timedelta(hours=5))],
        {"a": rec("a", ScanState.STOPPED, consecutive_failures=3)}, set(), schedule(),
        [("a", "failed")], id="stopped-is-failed-after-4h-for-3-failures"),
    pytest.param([art("a", ScanState.RUNNING), art("b", ScanState.PENDING)], {}, {"a"},
                 schedule(), [], id="in-progress-is-followed-not-triggered"),
    pytest.param([art("a", type_="CHART", scannable=False)], {}, {"a"},
                 schedule(types=("IMAGE", "CHART")), [], id="chart-never-scanned"),
    pytest.param([art("a", scannable=False)], {}, {"a"}, schedule(), [],
                 id="image-without-addition-link-not-supported"),
    pytest.param([art("a", tags=("v1.2",)), art("b", tags=("dev-1",)), art("c", tags=())],
                 {}, set(), schedule(tags=("v*",)), [("a", "unscanned")], id="tag-globs"),
    pytest.param(
        [art("a", pulled=NOW - timedelta(days=2)), art("b", pulled=NOW - timedelta(days=20)),
         art("c")],
        {}, set(), schedule(only_pulled_within=timedelta(days=7)), [("a", "unscanned")],
        id="only-pulled-within"),
    pytest.param(
        [scanned_and_pulled("scanner", NOW - timedelta(days=5, seconds=-30)),
         scanned_and_pulled("slack", NOW - timedelta(days=5) + timedelta(seconds=59)),
         scanned_and_pulled("after", NOW - timedelta(days=4, hours=23)),
         scanned_and_pulled("before", NOW - timedelta(days=5, minutes=2)),
         scanned_and_pulled("by-tag", NOW - timedelta(days=5, seconds=-30),
                            tag_pulled=NOW - timedelta(days=6))],
        {}, set(), schedule(only_pulled_within=timedelta(days=7)),
        [("after", "db_updated"), ("before", "db_updated"), ("by-tag", "db_updated")],
        id="the-scanners-own-pull-is-no-pull"),
    pytest.param(
        [art("a", ScanState.SUCCESS, ended=NOW - timedelta(days=9)),
         art("b", ScanState.ERROR, ended=NOW - timedelta(days=1)),
         art("c", ScanState.SUCCESS, ended=NOW - timedelta(days=5)),
         art("d"), art("e")],
        {}, {"e"}, schedule(),
        [("e", "changed"), ("d", "unscanned"), ("b", "failed"), ("a", "db_updated"),
         ("c", "db_updated")],  # a (9 days) waited longer than c (5 days)
        id="lane-order"),
    pytest.param([art(f"d{n}") for n in range(5)], {}, set(), schedule(max_scans=2),
                 [("d0", "unscanned"), ("d1", "unscanned")], id="budget"),
]


@pytest.mark.parametrize(("artifacts", "history", "new", "sched", "expected"), CASES)
def test_it_selects_by_lane_in_order(
    artifacts: list[Artifact],
    history: dict[str, ScanRecord],
    new: set[str],
    sched: ScheduleConfig,
    expected: list[tuple[str, str]],
) -> None:
    result = select(artifacts, history, schedule=sched, new_digests=new,
                    db_updated_at={"p": DB_NEW},
                    now=NOW)
    got = [(p.artifact.ref.digest, p.lane) for p in result.scans]
    assert got == expected


def test_it_reports_what_it_left_out() -> None:
    artifacts = [
        art("run", ScanState.RUNNING),
        art("chart", type_="CHART", scannable=False),
        art("wasm", type_="WASM", scannable=True),
        art("x1"), art("x2"), art("x3"),
        art("err", ScanState.ERROR, ended=NOW - timedelta(minutes=1)),
    ]
    result = select(artifacts, {}, schedule=schedule(max_scans=1, types=("IMAGE", "CHART", "WASM")),
                    now=NOW)
    assert [a.ref.digest for a in result.follow] == ["run"]
    assert result.not_supported == 2
    assert result.over_budget == 2
    assert result.backing_off == 1
    assert result.lanes() == {"unscanned": 1}


def test_it_lists_a_digest_once_even_when_listed_twice() -> None:
    a = art("a")
    result = select([a, replace(a, tags=(Tag("other"),))], {}, schedule=schedule(), now=NOW)
    assert len(result.scans) == 1


def test_it_needs_no_db_time_to_work() -> None:
    artifacts = [art("a", ScanState.SUCCESS, ended=NOW - timedelta(days=5))]
    result = select(artifacts, {}, schedule=schedule(), db_updated_at={"p": None}, now=NOW)
    assert result.scans == ()


def test_a_scan_without_an_end_time_discounts_its_start_alone_unless_under_way() -> None:
    """Harbor's zero end time reads as none: a pull after such a scan's start is someone's,
    while a scan under way pulls until it ends."""
    start = NOW - timedelta(days=5, minutes=1)
    ended = scanned_and_pulled("a", NOW - timedelta(days=4), ended=False)
    assert pull_times(ended, NOW) == [NOW - timedelta(days=4)]
    assert pull_times(scanned_and_pulled("b", start, ended=False), NOW) == []
    running = replace(ended, overview=replace(ended.overview, state=ScanState.RUNNING))
    assert pull_times(running, NOW) == []
