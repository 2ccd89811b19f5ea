"""Harbor's webhook events as a fast path: each burst of events is a small run of its own.

An event is a hint (goharbor/harbor#21005: a scan-all event names no scan; delivery is three
attempts, then nothing), so the fast path never records what an event says. It runs the
registry's ``changed``/``unscanned``/``failed`` lanes through the same pipeline as a cron run
(``run_cycle``: the credentials check, the walk, Harbor's finished reports imported, diffed and
routed), with ``trigger = "webhook"``, over the repositories the events name and nothing else
(a few calls, however large the registry): a pushed artifact is new (the ``changed`` lane, under the
registry's rate limits and caps), a finished scan is a report the store does not have yet.
What the store already holds is not recorded again, so duplicate and out-of-order events, and a
cron sweep after them, alert nothing twice; a lost event is what the sweep is for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from daemon import log
from daemon.config_types import Config, RegistryConfig, ScheduleConfig
from daemon.harbor.inventory import matches, repository_wanted
from daemon.service.hooks import HookEvent

_log = log.get(__name__)

LANES = ("changed", "unscanned", "failed")


def in_scope(registry: RegistryConfig, event: HookEvent) -> bool:
    """The event's repository is one the registry's globs watch."""
    if not matches(event.project, registry.projects, registry.exclude_projects):
        return False
    short = event.repository[len(event.project) + 1:]
    return repository_wanted(registry, event.project, short)


def webhook_schedule(registry: RegistryConfig) -> ScheduleConfig:
    """The small run's schedule: the registry alone, only the lanes an event can call for."""
    return ScheduleConfig(name=f"webhook:{registry.name}", cron="", registries=(registry.name,),
                          select=LANES)


def scopes(config: Config, events: list[HookEvent]) -> dict[str, frozenset[tuple[str, str]]]:
    """The registries a burst of events calls a small run for, in order of their first event,
    each with the (project, repository) pairs its events name: all the small run walks."""
    chosen: dict[str, set[tuple[str, str]]] = {}
    for event in events:
        registry = config.registry(event.registry)
        if registry is None or not in_scope(registry, event):
            _log.debug("webhook_ignored", registry=event.registry, repository=event.repository,
                       reason="not configured" if registry is None else "outside the globs")
            continue
        short = event.repository[len(event.project) + 1:]
        chosen.setdefault(event.registry, set()).add((event.project, short))
    return {name: frozenset(pairs) for name, pairs in chosen.items()}


def wanted_registries(config: Config, events: list[HookEvent]) -> list[str]:
    """The registries a burst of events calls a small run for, in order of their first event."""
    return list(scopes(config, events))


async def drain(queue: asyncio.Queue[HookEvent], settle: float) -> list[HookEvent]:
    """Wait for an event, then take every one that arrives within ``settle`` seconds of the
    last: a push and its scan's end, or a burst of pushes, become one small run."""
    events = [await queue.get()]
    while True:
        try:
            events.append(await asyncio.wait_for(queue.get(), timeout=settle))
        except TimeoutError:
            return events


async def serve(config: Config, queue: asyncio.Queue[HookEvent],
                run: Callable[[ScheduleConfig, frozenset[tuple[str, str]]], Awaitable[None]], *,
                settle: float = 0.2) -> None:
    """Forever: a burst of events, then a small run per registry they concern, over the
    repositories they name only."""
    while True:
        events = await drain(queue, settle)
        for name, scope in scopes(config, events).items():
            registry = config.registry(name)
            assert registry is not None
            _log.info("webhook_run", registry=name, events=len(events),
                      repositories=len(scope))
            await run(webhook_schedule(registry), scope)
