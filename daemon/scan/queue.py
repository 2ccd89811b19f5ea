"""Trigger scans under the caps, follow them to the end, and collect what they leave.

Per registry, at most ``max_scans_in_flight`` of our scans are Pending or Running (an index
counts for its children, up to the whole cap), and a global cap sits across registries. A
trigger's answer: 202 → follow; 409 → already scanning (follow it, it is not ours); 400 → Not
Supported; 412 → no scanner; 404 → gone.

Polls are batched: one artifact-list page tells the status of up to 100 artifacts, so the queue
polls, per project, whichever is cheaper: the project's artifact list (Harbor ≥ v2.12), each
repository's list, or the single artifacts. The interval starts short and backs off while
nothing changes. Harbor may show Error for a moment right after a trigger (API-NOTES §7): an
Error within ``early_error_window`` of our trigger is polled again before it is believed, and
the old report still shown right after a rescan's trigger is not taken for the new one.

A stop request (SIGTERM, SIGINT) is checked before every trigger: after it nothing more is
triggered, the scans in flight are followed until its deadline, and the queue ends as soon as
none is left (or at the deadline, leaving the rest running in Harbor for the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from daemon import log
from daemon.errors import AlreadyScanning, HarborError, NoScanner, NotFound, Unsupported
from daemon.harbor.client import PAGE_SIZE, HarborClient
from daemon.model import Artifact, ScanResult, ScanState
from daemon.scan.collect import Collector
from daemon.scan.ratelimit import WeightedCap
from daemon.scan.stop import StopRequest

_log = log.get(__name__)
MIN_POLL = 0.05  # seconds: the shortest wait between two polls


@dataclass(frozen=True)
class QueueOptions:
    poll_initial: float = 2.0
    poll_max: float = 20.0
    poll_factor: float = 1.5
    early_error_window: float = 5.0
    deadline: float | None = None  # monotonic time after which in-flight scans are left running


@dataclass
class Job:
    artifact: Artifact
    lane: str
    trigger: str
    ours: bool = False
    weight: int = 0
    triggered_at: float = 0.0
    before_report_id: str = ""
    outcome: str = ""  # "", "complete", "error", "stopped", "not_supported", "not_triggered", …
    result: ScanResult | None = None


@dataclass
class QueueResult:
    jobs: list[Job] = field(default_factory=list)
    triggered: int = 0
    polls: int = 0
    left_running: int = 0  # in flight when the queue ended early: Harbor finishes them
    not_triggered: int = 0  # selected, never triggered because the queue ended early

    def count(self, outcome: str) -> int:
        return sum(1 for j in self.jobs if j.outcome == outcome)

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for job in self.jobs:
            counts[job.outcome or "unfinished"] += 1
        return dict(counts)


class _StopBeforeSend(Exception):
    """Raised from the client's send hook: a stop arrived while a trigger waited its turn."""


Progress = Callable[[Job], None]
ResultSink = Callable[[ScanResult], None]


class ScanQueue:
    def __init__(
        self,
        client: HarborClient,
        collector: Collector,
        *,
        registry_cap: WeightedCap,
        global_cap: WeightedCap,
        by_project: bool,
        repository_sizes: dict[tuple[str, str], int] | None = None,
        options: QueueOptions | None = None,
        on_progress: Progress | None = None,
        on_result: ResultSink | None = None,
        stop: StopRequest | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.collector = collector
        self.registry_cap = registry_cap
        self.global_cap = global_cap
        self.by_project = by_project
        self.sizes = repository_sizes or {}
        self.options = options or QueueOptions()
        self._progress = on_progress or (lambda job: None)
        self._sink = on_result or (lambda result: None)
        self.stop = stop
        self._clock = clock
        self._sleep = sleep
        self._durations: deque[float] = deque(maxlen=50)  # our recent scans, trigger to end

    async def run(
        self, to_scan: Sequence[tuple[Artifact, str]], follow: Iterable[Artifact], trigger: str
    ) -> QueueResult:
        """Scan ``to_scan`` ((artifact, lane) in order) and follow ``follow`` to their end."""
        result = QueueResult()
        waiting = deque(Job(a, lane, trigger) for a, lane in to_scan)
        flying: dict[tuple[str, str], Job] = {}
        for artifact in follow:
            job = Job(artifact, "follow", trigger)
            flying[_key(artifact)] = job
            result.jobs.append(job)
        interval = self.options.poll_initial
        collecting: set[asyncio.Task[None]] = set()
        try:
            while waiting or flying:
                if self._past_deadline():
                    _log.warning("scan_queue_deadline", registry=self.client.name,
                                 left_running=len(flying), not_triggered=len(waiting))
                    self._leave(waiting, flying, result)
                    break
                if self.stop is not None and self.stop.requested and (
                        not flying or self.stop.expired()):
                    (_log.warning if flying else _log.info)(
                        "scan_queue_stopped", registry=self.client.name,
                        reason=self.stop.reason, left_running=len(flying),
                        not_triggered=len(waiting))
                    self._leave(waiting, flying, result)
                    break
                changed = await self._trigger_some(waiting, flying, result)
                if not flying:
                    if waiting:  # the global cap is held by other registries: wait a little
                        await self._nap(self.options.poll_initial)
                    continue
                await self._nap(self._poll_delay(interval, flying))
                finished = await self._poll(flying, result)
                for job in finished:
                    # The caps are free at once, so the next triggers need not wait for the
                    # report fetches: those run beside them, under the same rate limit.
                    await self._release(job)
                    self._observe(job)
                    task = asyncio.ensure_future(self._finish(job, flying))
                    collecting.add(task)
                    task.add_done_callback(collecting.discard)
                changed = changed or bool(finished)
                interval = (self.options.poll_initial if changed
                            else min(self.options.poll_max, interval * self.options.poll_factor))
            if collecting:
                await asyncio.gather(*collecting)
        finally:
            for task in collecting:
                task.cancel()
        return result

    def _observe(self, job: Job) -> None:
        """How long our scan took, by Harbor's own start and end times (the time we saw it
        end would include our poll's lateness, and keep polls as late as the first ones)."""
        overview = job.artifact.overview
        if job.ours and overview is not None and overview.start_time and overview.end_time:
            took = (overview.end_time - overview.start_time).total_seconds()
            if took >= 0:
                self._durations.append(took)

    def _poll_delay(self, interval: float, flying: dict[tuple[str, str], Job]) -> float:
        """How long to wait before the next poll: until the first of our scans can have
        finished (as long as our scans have taken, at the median; one such time when some are
        already late), else the backed-off interval. Never shorter than ``MIN_POLL``: a poll
        costs a call."""
        if not self._durations:
            return interval
        typical = statistics.median(self._durations)
        now = self._clock()
        due = [j.triggered_at + typical - now for j in flying.values()
               if j.ours and j.triggered_at]
        if not due:
            return interval
        upcoming = [d for d in due if d > 0]
        if len(upcoming) < len(due):
            # Some are past their time (an adapter queue, a slow scan): look again after one
            # more scan's time, not after the backed-off interval, which would leave the rate
            # budget idle while every slot is taken.
            return max(MIN_POLL, min(interval, typical))
        return max(MIN_POLL, min(interval, min(upcoming)))

    def _past_deadline(self) -> bool:
        return self.options.deadline is not None and self._clock() >= self.options.deadline

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.requested

    async def _nap(self, seconds: float) -> None:
        if self.stop is None:
            await self._sleep(seconds)
        else:
            await self.stop.nap(seconds)

    @staticmethod
    def _leave(waiting: deque[Job], flying: dict[tuple[str, str], Job],
               result: QueueResult) -> None:
        """End early: what flies stays with Harbor (unfinished), the rest is never triggered."""
        for job in waiting:
            job.outcome = "not_triggered"
        result.jobs.extend(waiting)
        result.left_running = len(flying)
        result.not_triggered = len(waiting)

    async def _trigger_some(
        self, waiting: deque[Job], flying: dict[tuple[str, str], Job], result: QueueResult
    ) -> bool:
        triggered = False
        while waiting and not self._stopping():  # checked before every trigger
            job = waiting[0]
            weight = self.registry_cap.weight(len(job.artifact.children) or 1)
            if not self.registry_cap.try_acquire(weight):
                break
            if not self.global_cap.try_acquire(weight):
                await self.registry_cap.release(weight)
                break
            waiting.popleft()
            result.jobs.append(job)
            job.weight = weight
            key = _key(job.artifact)
            if key in flying:  # listed twice: one scan is enough
                await self._release(job)
                job.outcome = "duplicate"
                continue
            if not await self._trigger(job, flying, result):
                result.jobs.remove(job)  # a stop came while it waited: it was never sent
                waiting.appendleft(job)
                break
            triggered = True
        return triggered

    async def _trigger(
        self, job: Job, flying: dict[tuple[str, str], Job], result: QueueResult
    ) -> bool:
        """Trigger ``job``; False when a stop refused it before it went out."""
        ref = job.artifact.ref
        job.before_report_id = job.artifact.overview.report_id if job.artifact.overview else ""
        try:
            await self.client.trigger_scan(ref.project, ref.repository, ref.digest,
                                           before_send=self._refuse_when_stopping)
        except _StopBeforeSend:
            await self._release(job)
            return False
        except AlreadyScanning:
            await self._release(job)  # someone else's scan: follow it without holding our cap
            job.before_report_id = ""
            flying[_key(job.artifact)] = job
            _log.info("scan_already_running", artifact=str(ref))
            return True
        except (Unsupported, NoScanner, NotFound, HarborError) as exc:
            await self._release(job)
            job.outcome = {Unsupported: "not_supported", NoScanner: "no_scanner",
                           NotFound: "gone"}.get(type(exc), "trigger_failed")
            _log.warning("scan_not_started", artifact=str(ref), outcome=job.outcome,
                         error=str(exc))
            self._progress(job)
            return True
        job.ours = True
        job.triggered_at = self._clock()
        result.triggered += 1
        flying[_key(job.artifact)] = job
        job.artifact = replace(job.artifact, overview=None)
        _log.info("scan_triggered", artifact=str(ref), lane=job.lane)
        self._progress(job)
        return True

    def _refuse_when_stopping(self) -> None:
        # The rate limiter may hold a trigger back for a while: a stop that arrives meanwhile
        # must still keep it from going out.
        if self._stopping():
            raise _StopBeforeSend

    async def _release(self, job: Job) -> None:
        if job.weight:
            await self.registry_cap.release(job.weight)
            await self.global_cap.release(job.weight)
            job.weight = 0

    async def _poll(self, flying: dict[tuple[str, str], Job], result: QueueResult) -> list[Job]:
        """Read the status of every in-flight artifact with the fewest calls; return finished."""
        seen: dict[tuple[str, str], Artifact] = {}
        missing: list[tuple[str, str]] = []
        by_project: dict[str, list[Job]] = defaultdict(list)
        for job in flying.values():
            by_project[job.artifact.ref.project].append(job)
        for project, jobs in by_project.items():
            try:
                listed = await self._read_project(project, jobs, result)
            except HarborError as exc:
                _log.warning("scan_poll_failed", registry=self.client.name, project=project,
                             error=str(exc))
                continue  # the next poll tries again
            for job in jobs:
                key = _key(job.artifact)
                if key in listed:
                    seen[key] = listed[key]
                else:
                    missing.append(key)  # no longer listed: deleted while we waited
        finished: list[Job] = []
        now = self._clock()
        for key in missing:
            job = flying.pop(key)
            job.outcome = "gone"
            await self._release(job)
            self._progress(job)
        for key, artifact in seen.items():
            job = flying[key]
            job.artifact = artifact
            overview = artifact.overview
            if overview is None or not overview.state.finished:
                self._progress(job)
                continue
            if job.ours and overview.report_id and overview.report_id == job.before_report_id:
                continue  # the report from before our trigger: the rescan has not begun
            if (job.ours and overview.state is ScanState.ERROR
                    and now - job.triggered_at < self.options.early_error_window):
                continue  # Harbor's transient Error right after a trigger: look again
            finished.append(flying.pop(key))
        return finished

    async def _read_project(
        self, project: str, jobs: list[Job], result: QueueResult
    ) -> dict[tuple[str, str], Artifact]:
        per_repo: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            per_repo[job.artifact.ref.repository].append(job)
        cost_repos = 0
        for repo, repo_jobs in per_repo.items():
            cost_repos += min(len(repo_jobs), _pages(self.sizes.get((project, repo), 1)))
        project_size = sum(n for (p, _), n in self.sizes.items() if p == project)
        listed: list[Artifact] = []
        if self.by_project and _pages(project_size) <= cost_repos:
            result.polls += _pages(project_size)
            listed = await self.client.project_artifacts(project)
        else:
            for repo, repo_jobs in per_repo.items():
                if len(repo_jobs) <= _pages(self.sizes.get((project, repo), 1)):
                    for job in repo_jobs:
                        result.polls += 1
                        with contextlib.suppress(NotFound):
                            listed.append(await self.client.artifact(
                                project, repo, job.artifact.ref.digest))
                else:
                    result.polls += _pages(self.sizes.get((project, repo), 1))
                    listed.extend(await self.client.repository_artifacts(project, repo))
        return {_key(a): a for a in listed}

    async def _finish(self, job: Job, flying: dict[tuple[str, str], Job]) -> None:
        overview = job.artifact.overview
        assert overview is not None
        job.outcome = {ScanState.SUCCESS: "complete", ScanState.ERROR: "error",
                       ScanState.STOPPED: "stopped"}[overview.state]
        job.result = await self.collector.collect(job.artifact, job.trigger)
        if job.result is not None:
            self._sink(job.result)
        elif overview.state is ScanState.SUCCESS:
            job.outcome = "not_collected"
        _log.info("scan_finished", artifact=str(job.artifact.ref), outcome=job.outcome)
        self._progress(job)


def _key(artifact: Artifact) -> tuple[str, str]:
    return (f"{artifact.ref.project}/{artifact.ref.repository}", artifact.ref.digest)


def _pages(count: int) -> int:
    return max(1, -(-count // PAGE_SIZE))
