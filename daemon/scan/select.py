"""Which artifacts a schedule scans, in which order: a pure decision that takes ``now``.

Lanes, served in this order (DESIGN.md "Selection and rate limits"):

- ``changed``: a digest first seen since the last run that Harbor has not scanned; fresh pushes
  first;
- ``unscanned``: Harbor shows it Not Scanned (older, or never scanned);
- ``failed``: the last scan ended Error or Stopped, retried after ``failed_backoff`` doubled per
  consecutive failure;
- ``db_updated``: the scanner's vulnerability DB is newer than the last successful scan;
- ``stale``: the last successful scan is older than ``stale_after``.

Only lanes named in the schedule's ``select`` are served. Filters: tag globs, ``types``,
``only_pulled_within`` (someone's pull: the scanner's own pull during a scan, which Harbor
records as one by default, is not, ``pull_times``). Only ``IMAGE`` artifacts (an index of images
is ``IMAGE`` too) whose scanner offers a vulnerabilities addition are scannable; the rest are
Not Supported. Artifacts that Harbor already shows Pending or Running are followed, never
triggered again. The run's budget (``daemon/scan/trickle.py``: what the registry's limits allow
until the next run, or a fixed ``max_scans``) caps the list, fresh lanes first. The rescan lanes
are ordered for the trickle: images whose repository has open known-exploited findings (CISA
KEV, the most first), then recently pushed or pulled images, then those whose repository has the
most open fixable Critical/High findings, then the oldest report; what a run leaves is still
behind the DB at the next one, so each run continues where the last one stopped.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from daemon.config_types import ALL_LANES, ScheduleConfig
from daemon.model import Artifact, ScanRecord, ScanState

SCANNABLE_TYPES = frozenset({"IMAGE"})
IN_PROGRESS = frozenset({ScanState.PENDING, ScanState.RUNNING, ScanState.SCHEDULED})
_EPOCH = datetime.min
RESCAN_LANES = frozenset({"db_updated", "stale"})
RECENT = timedelta(days=7)  # "recently pushed or pulled", for the rescan order
# How long after its last scan ends an artifact's pull time is still the scanner's own pull
# (Harbor writes the event's time as its handler runs it, shortly after the request)
SCANNER_PULL_SLACK = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Pick:
    """One artifact to scan, with the lane that chose it."""

    artifact: Artifact
    lane: str


@dataclass(frozen=True, slots=True)
class Selection:
    scans: tuple[Pick, ...]
    follow: tuple[Artifact, ...] = ()  # Harbor shows them Pending/Running: follow, don't trigger
    not_supported: int = 0
    filtered_out: int = 0
    over_budget: int = 0
    backing_off: int = 0  # failed, but not due again yet
    behind_db: int = 0  # reports older than the scanner's DB (before the budget; counted
    # whether or not the schedule's select has the db_updated lane)
    oldest_behind: datetime | None = None

    def lanes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for pick in self.scans:
            counts[pick.lane] = counts.get(pick.lane, 0) + 1
        return counts


def is_scannable(artifact: Artifact) -> bool:
    return artifact.scannable and artifact.type.upper() in SCANNABLE_TYPES


def pull_times(artifact: Artifact, now: datetime) -> list[datetime]:
    """When the artifact, or one of its tags, was last pulled by someone other than its
    scanner. Harbor records the scanner's pull of each image it scans as a pull (pull time,
    pull count) unless "Retain image last pull time on scanning" is on
    (``scanner_skip_update_pulltime``), so an artifact pull time inside its last scan, from its
    start to ``SCANNER_PULL_SLACK`` after its end, is that pull and not counted. The scanner
    pulls by digest: a tag's pull time is always someone's pull by that tag."""
    pulled = [t.pull_time for t in artifact.tags if t.pull_time]
    at, scan = artifact.pull_time, artifact.overview
    if at is None:
        return pulled
    if scan is None or scan.start_time is None:
        pulled.append(at)
        return pulled
    # a scan under way pulls until it ends; one that ended without an end time, at its start
    end = scan.end_time or (now if scan.state in IN_PROGRESS else scan.start_time)
    if not scan.start_time <= at <= end + SCANNER_PULL_SLACK:
        pulled.append(at)
    return pulled


def passes_filters(artifact: Artifact, schedule: ScheduleConfig, now: datetime) -> bool:
    """The schedule's tag globs, types and ``only_pulled_within`` (``pull_times``)."""
    if schedule.types and artifact.type.upper() not in {t.upper() for t in schedule.types}:
        return False
    if schedule.tags and not any(
        fnmatchcase(tag.name, pattern) for tag in artifact.tags for pattern in schedule.tags
    ):
        return False
    if schedule.only_pulled_within is not None:
        pulled = pull_times(artifact, now)
        if not pulled or max(pulled) < now - schedule.only_pulled_within:
            return False
    return True


def failure_due_at(
    finished: datetime | None, failures: int, backoff: timedelta
) -> datetime | None:
    """When a failed artifact may be retried: ``backoff × 2^(failures-1)`` after it failed."""
    if finished is None:
        return None
    factor: int = 2 ** max(0, min(failures, 30) - 1)
    due: datetime = finished + backoff * factor
    return due


def lane_of(
    artifact: Artifact,
    record: ScanRecord | None,
    *,
    is_new: bool,
    db_updated_at: datetime | None,
    schedule: ScheduleConfig,
    now: datetime,
) -> str | None:
    """The lane an artifact belongs to, ``"follow"``, ``"backoff"``, or ``None`` (nothing to do)."""
    overview = artifact.overview
    if overview is None:
        return "changed" if is_new else "unscanned"
    if overview.state in IN_PROGRESS:
        return "follow"
    if overview.state in (ScanState.ERROR, ScanState.STOPPED):
        same = record is not None and record.report_id == overview.report_id
        failures = record.consecutive_failures if same and record else 0
        finished = overview.end_time or (record.finished_at if same and record else None)
        due = failure_due_at(finished, max(1, failures), schedule.failed_backoff)
        return "failed" if due is None or now >= due else "backoff"
    # Success: Harbor's end time is the truth; our record tells which DB the report came from.
    last_success = overview.end_time or (record.last_success_at if record else None)
    scanned_with = last_success
    if record is not None and record.report_id == overview.report_id:
        scanned_with = record.scanner_db_updated_at or last_success
    if db_updated_at is not None and scanned_with is not None and db_updated_at > scanned_with:
        return "db_updated"
    if last_success is not None and now - last_success > schedule.stale_after:
        return "stale"
    return None


def recently_used(artifact: Artifact, now: datetime) -> bool:
    """Pushed or pulled (the artifact or one of its tags, its scanner's pull aside:
    ``pull_times``) within :data:`RECENT` of ``now``."""
    times = [t for t in (artifact.push_time, *(t.push_time for t in artifact.tags)) if t]
    times.extend(pull_times(artifact, now))
    return bool(times) and max(times) >= now - RECENT


def _order_key(lane: str, artifact: Artifact, severe: Mapping[tuple[str, str], int],
               now: datetime, kev: Mapping[tuple[str, str], int]) -> tuple[object, ...]:
    overview = artifact.overview
    if lane in ("changed", "unscanned"):
        pushed = artifact.push_time
        # Fresh pushes first: newest push time first; unknown push times last.
        return (pushed is None, -(pushed.timestamp()) if pushed else 0.0, str(artifact.ref))
    ended = overview.end_time if overview else None
    if lane in RESCAN_LANES:
        # The trickle's order: known exploited first (a fresh report of what attackers use
        # matters most), then recently pushed or pulled, then the repositories with the most
        # open fixable Critical/High findings, then the oldest report.
        where = (artifact.ref.project, artifact.ref.repository)
        fixable = severe.get(where, 0)
        return (-kev.get(where, 0), not recently_used(artifact, now), -fixable, ended is None,
                ended.timestamp() if ended else 0.0, str(artifact.ref))
    # Failed: the longest-waiting first.
    return (ended is None, ended.timestamp() if ended else 0.0, str(artifact.ref))


class _Lane:
    """One lane's candidates: every one counted, only the ``bound`` first in the lane's order
    kept (all without a bound). Pruned to the bound each time it holds twice as many, in
    order of arrival among equals, so the kept ones are what sorting them all would put first:
    a lane holds at most twice the run's budget, not every image behind the scanner's DB."""

    def __init__(self, name: str, bound: int | None, severe: Mapping[tuple[str, str], int],
                 now: datetime, kev: Mapping[tuple[str, str], int]) -> None:
        self.name, self.bound, self.count = name, bound, 0
        self._kept: list[Artifact] = []
        self._key = lambda a: _order_key(name, a, severe, now, kev)

    def add(self, artifact: Artifact) -> None:
        self.count += 1
        self._kept.append(artifact)
        if self.bound is not None and len(self._kept) >= 2 * max(self.bound, 1):
            self._kept = heapq.nsmallest(self.bound, self._kept, key=self._key)

    def ordered(self) -> list[Artifact]:
        ordered = sorted(self._kept, key=self._key)
        return ordered if self.bound is None else ordered[:self.bound]


class Selector:
    """``select`` fed one artifact at a time, each with its scan record: a run hands it the
    walk a batch at a time with the records of that batch's digests, holding neither every
    artifact nor every record (``daemon/scan/run.py``). Arguments as ``select``'s."""

    def __init__(
        self,
        *,
        schedule: ScheduleConfig,
        new_digests: Collection[str] = (),
        db_updated_at: Mapping[str, datetime | None] | None = None,
        now: datetime,
        budget: int | None = None,
        severe: Mapping[tuple[str, str], int] | None = None,
        kev: Mapping[tuple[str, str], int] | None = None,
        grouped: bool = False,
    ) -> None:
        self._schedule, self._new, self._now, self._grouped = schedule, new_digests, now, grouped
        self._db_updated_at = db_updated_at or {}
        self._wanted = [lane for lane in ALL_LANES if lane in schedule.select]
        if budget is None:
            budget = schedule.max_scans
        self._bound = None if budget is None else max(0, budget)
        self._lanes = {lane: _Lane(lane, self._bound, severe or {}, now, kev or {})
                       for lane in self._wanted}
        self._follow: list[Artifact] = []
        self._not_supported = self._filtered = self._backing_off = 0
        self._seen: set[tuple[str, str]] = set()
        self._project: str | None = None
        self._behind = 0  # behind the DB whether or not this schedule rescans them
        self._oldest_behind: datetime | None = None

    def add(self, artifact: Artifact, record: ScanRecord | None) -> None:
        """One artifact of the walk, with the last scan of its digest (``None``: never)."""
        if self._grouped and artifact.ref.project != self._project:
            self._seen.clear()
            self._project = artifact.ref.project
        key = (artifact.ref.project, artifact.ref.digest)
        if key in self._seen:
            return
        self._seen.add(key)
        if not passes_filters(artifact, self._schedule, self._now):
            self._filtered += 1
            return
        if not is_scannable(artifact):
            self._not_supported += 1
            return
        lane = lane_of(
            artifact,
            record,
            is_new=artifact.ref.digest in self._new,
            db_updated_at=self._db_updated_at.get(artifact.ref.project),
            schedule=self._schedule,
            now=self._now,
        )
        if lane == "db_updated":
            self._behind += 1
            end = artifact.overview.end_time if artifact.overview else None
            if end and (self._oldest_behind is None or end < self._oldest_behind):
                self._oldest_behind = end
        if lane == "follow":
            self._follow.append(artifact)
        elif lane == "backoff":
            self._backing_off += 1
        elif lane is not None and lane in self._lanes:
            self._lanes[lane].add(artifact)

    def selection(self) -> Selection:
        ordered = [Pick(artifact, lane) for lane in self._wanted
                   for artifact in self._lanes[lane].ordered()]
        candidates = sum(lane.count for lane in self._lanes.values())
        allowed = candidates if self._bound is None else self._bound
        return Selection(
            scans=tuple(ordered[:allowed]),
            follow=tuple(self._follow),
            not_supported=self._not_supported,
            filtered_out=self._filtered,
            over_budget=max(0, candidates - allowed),
            backing_off=self._backing_off,
            behind_db=self._behind,
            oldest_behind=self._oldest_behind,
        )


def select(
    artifacts: Iterable[Artifact],
    history: Mapping[str, ScanRecord],
    *,
    schedule: ScheduleConfig,
    new_digests: Collection[str] = (),
    db_updated_at: Mapping[str, datetime | None] | None = None,
    now: datetime,
    budget: int | None = None,
    severe: Mapping[tuple[str, str], int] | None = None,
    kev: Mapping[tuple[str, str], int] | None = None,
    grouped: bool = False,
) -> Selection:
    """The ordered scan list for one run; ``db_updated_at`` is keyed by project name.
    ``budget``: the scans the run may start (else the schedule's ``max_scans``, else all);
    ``severe``: open fixable Critical/High findings per (project, repository), ``kev``: open
    known-exploited findings per (project, repository), for the order of the rescan lanes.
    ``grouped``: ``artifacts`` come a project at a time (each project's together, as a walk
    yields them), so what was seen of one project is let go at the next."""
    selector = Selector(schedule=schedule, new_digests=new_digests, db_updated_at=db_updated_at,
                        now=now, budget=budget, severe=severe, kev=kev, grouped=grouped)
    for artifact in artifacts:
        selector.add(artifact, history.get(artifact.ref.digest))
    return selector.selection()
