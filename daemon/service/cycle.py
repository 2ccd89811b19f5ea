"""One cycle of a schedule, as every caller runs it: the scan run, then its alerts queued.

``scanwatch run --once``, the daemon's cron jobs and ``scanwatch demo`` all call ``run_cycle``,
so a schedule behaves the same whoever fires it. Alerts are queued (committed to the outbox)
at the end of the cycle; sending them is the delivery worker's job (``deliver``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from daemon import log
from daemon.config_types import Config, ScheduleConfig
from daemon.scan.stop import StopRequest

if TYPE_CHECKING:
    from daemon.store.db import Store

_log = log.get(__name__)


@dataclass
class CycleResult:
    run: Any  # daemon.scan.run.RunResult
    message_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.run.ok)


def run_context(config: Config, run: Any) -> Any:
    """What alert grouping needs to know about a finished run."""
    from daemon.alerts.group import context_for

    return context_for(
        config,
        name=run.schedule,
        kind="immediate",
        project_ids={(reg.registry, project): pid
                     for reg in run.registries for project, pid in reg.project_ids.items()},
        images_checked={reg.registry: reg.artifacts for reg in run.registries},
        scanner_db_updated_at={reg.registry: reg.scanner_db_updated_at
                               for reg in run.registries if reg.scanner_db_updated_at},
        coverage={reg.registry: reg.coverage_record() for reg in run.registries
                  if reg.images},
    )


def scan_problems(run: Any, now: datetime) -> list[Any]:
    """Registry-wide problems of the run: a scanner that is down, a registry that failed, a
    walk not believed because it would remove too much at once."""
    from daemon.alerts.events import SCAN_FAILED, SCANNER_UNAVAILABLE, ScanProblem

    problems = []
    for reg in run.registries:
        if reg.removal:
            problems.append(ScanProblem(SCAN_FAILED, reg.registry, detail=reg.removal, at=now))
        for project, why in sorted(reg.unavailable.items()):
            problems.append(ScanProblem(SCANNER_UNAVAILABLE, reg.registry, project,
                                        detail=why, at=now))
    return problems


async def run_cycle(
    config: Config,
    store: Store,
    schedule: ScheduleConfig,
    *,
    trigger: str,
    now_fn: Callable[[], datetime],
    on_progress: Any = None,
    options: Any = None,
    stop: StopRequest | None = None,
    scope: frozenset[tuple[str, str]] | None = None,
) -> CycleResult:
    """Run ``schedule`` once and queue the alerts its changes call for. Once ``stop``
    is requested no more scans are triggered (see ``daemon.scan.stop``). ``scope``: only
    these (project, repository) pairs (a webhook's small run)."""
    from daemon.alerts.outbox import build_and_queue
    from daemon.scan.run import run_schedule

    run = await run_schedule(config, store, schedule, trigger=trigger, now_fn=now_fn,
                             options=options, on_progress=on_progress, stop=stop,
                             scope=scope)
    now = now_fn()
    ids = await store.thread.run(build_and_queue, store, config,
                                 run_context=run_context(config, run), now=now,
                                 problems=scan_problems(run, now))
    await store.thread.run(store.record_run_summary, run.run_id, run.summary(len(ids)))
    return CycleResult(run, ids)


async def deliver(
    config: Config,
    store: Store,
    *,
    now_fn: Callable[[], datetime],
    within: timedelta | None,
    metrics: Any = None,
    sender: Any = None,
) -> Any:
    """Send what the outbox holds; with ``within``, keep retrying until that much time passed."""
    from daemon.alerts.deliver import deliver_pending

    on_sent = on_dead = None
    if metrics is not None:
        def on_sent(receiver: str) -> None:
            metrics.alerts_sent.labels(receiver).inc()

        def on_dead(receiver: str, reason: str) -> None:
            metrics.alerts_dead.labels(receiver).inc()

    deadline = now_fn() + within if within is not None else None
    extra = {"sender": sender} if sender is not None else {}
    report = await deliver_pending(store, config, now_fn=now_fn, deadline=deadline,
                                   on_sent=on_sent, on_dead=on_dead, **extra)
    counts = {k: v for k, v in vars(report).items() if isinstance(v, int)}
    # The daemon passes every 30 s: a pass that sent, retried and dropped nothing is debug.
    busy = report.sent or report.retried or report.dead
    (_log.info if busy else _log.debug)("alerts_delivered", **counts)
    return report
