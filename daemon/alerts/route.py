"""Routing: which receivers hear about which item (pure).

Routes are tried in order, as in Alertmanager: the first route that takes an item wins, unless it
says ``continue = true``, in which case the next routes are tried too. A route takes an item when
its registry, project and repository globs match, the item's severity reaches ``min_severity``
(scan problems have no severity and pass), and the item's event is in ``events`` (its
``receivers`` get it) or it is an overdue finding (its ``escalate_to`` receivers get it).
A receiver hears about an item once, however many routes name it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from daemon.alerts.events import (
    REMINDER,
    SLA_OVERDUE,
    AlertItem,
    Item,
    event_name,
    finding_of,
    scope,
    severity,
)
from daemon.config_types import EVENTS, Config, RouteConfig
from daemon.model import ExploitInfo


@dataclass(frozen=True, slots=True)
class Delivery:
    """One item for one receiver, through one route; ``source`` and ``source_id`` say which
    history row it came from (``Item``), ``send_reason`` is set by the dedup stage."""

    receiver: str
    route: str
    item: AlertItem
    escalation: bool = False
    source: str = ""
    source_id: int = 0
    send_reason: str = ""


def _matchers(route: RouteConfig) -> str:
    matchers: list[object] = [list(route.registries), list(route.projects),
                              list(route.repositories), route.min_severity.label,
                              sorted(route.events)]
    if route.kev or route.min_epss is not None:  # absent before: older routes keep their key
        matchers.append({"kev": route.kev, "min_epss": route.min_epss})
    return json.dumps(matchers)


def route_keys(routes: Sequence[RouteConfig]) -> list[str]:
    """Each route's stable identity (its cursor and digest clock): its ``name``, else
    ``route-`` and a digest of its matchers (globs, threshold, events), so inserting or moving
    a route changes no other route's identity. Unnamed routes with the same matchers are told
    apart by a ``-2``, ``-3`` suffix in their order."""
    out: list[str] = []
    for route in routes:
        if route.name:
            out.append(route.name)
            continue
        base = "route-" + hashlib.sha256(_matchers(route).encode()).hexdigest()[:10]
        key, n = base, 1
        while key in out:
            n += 1
            key = f"{base}-{n}"
        out.append(key)
    return out


def legacy_keys(routes: Sequence[RouteConfig]) -> dict[str, str]:
    """identity → the positional key (``route<N>``) older versions stored its cursor under,
    for unnamed routes: the store adopts such a cursor once (``store.outbox``)."""
    return {key: f"route{i + 1}" for i, (key, r) in enumerate(zip(route_keys(routes), routes,
                                                                   strict=True)) if not r.name}


def _config_label(route: RouteConfig, index: int) -> str:
    """How `config check` names a table: by its name, else by its 1-based position."""
    return route.name or str(index + 1)


def _any(globs: Sequence[str], value: str) -> bool:
    return any(fnmatchcase(value, g) for g in globs)


def scope_miss(route: RouteConfig, item: AlertItem,
               exploit: Mapping[str, ExploitInfo] | None = None) -> str:
    """Why the route's globs and thresholds do not admit the item (events aside), in words;
    "" when they admit it.

    ``kev = true`` and ``min_epss`` admit only findings whose CVE is in KEV / scores at least
    that much in ``exploit`` (what the feeds in force say); items with no CVE never pass them.

    Repository globs match ``project/repository`` (as the config documents) or, for
    convenience, the repository name alone.
    Registry-wide items (a scanner that is down) carry no project or repository: only the
    registry glob applies to them.
    """
    registry, project, repository = scope(item)
    if not _any(route.registries, registry):
        return f"registry {registry} not in {list(route.registries)}"
    if project and not _any(route.projects, project):
        return f"project {project} not in {list(route.projects)}"
    if repository and not (_any(route.repositories, f"{project}/{repository}")
                           or _any(route.repositories, repository)):
        return f"repository {project}/{repository} not in {list(route.repositories)}"
    level = severity(item)
    if level is not None and level < route.min_severity:
        return f"severity {level.label} below min_severity {route.min_severity.label}"
    if route.kev or route.min_epss is not None:
        found = finding_of(item)
        info = (exploit or {}).get(found.vulnerability) if found is not None else None
        if route.kev and (info is None or not info.kev):
            return "kev = true: not in CISA KEV"
        if route.min_epss is not None and (info is None or (info.epss or 0.0) < route.min_epss):
            score = "unscored" if info is None or info.epss is None else f"{info.epss:g}"
            return f"EPSS {score} below min_epss {route.min_epss:g}"
    return ""


def in_scope(route: RouteConfig, item: AlertItem,
             exploit: Mapping[str, ExploitInfo] | None = None) -> bool:
    """The route's globs and thresholds admit the item (events aside): ``scope_miss``."""
    return not scope_miss(route, item, exploit)


def _targets(route: RouteConfig, item: AlertItem) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(receivers, escalation receivers) the route sends the item to, if it is in scope."""
    name = event_name(item)
    if name == REMINDER:
        return (route.receivers if route.repeat_open_every else (), ())
    plain = route.receivers if name in route.events else ()
    escalated = route.escalate_to if name == SLA_OVERDUE else ()
    return (plain, escalated)


@dataclass(frozen=True, slots=True)
class RouteStep:
    """What one route did with one item, in the order the routes are tried (``walk``).

    ``deliveries`` go to the receivers no earlier route reached; ``reached`` are the receivers
    it names that an earlier route reached already. A route that did not take the item says
    why (``why_not``), or names the earlier route without ``continue`` that stopped the walk
    before it (``stopped_by``)."""

    key: str
    route: RouteConfig
    taken: bool
    deliveries: tuple[Delivery, ...] = ()
    reached: tuple[str, ...] = ()
    why_not: str = ""
    stopped_by: str = ""


def walk(entry: AlertItem | Item, routes: Sequence[RouteConfig], keys: Sequence[str],
         exploit: Mapping[str, ExploitInfo] | None = None, *, every: bool = False
         ) -> list[RouteStep]:
    """The routing of one item: each route tried in order, the first that takes it wins
    unless it says ``continue``; a receiver is reached once. ``keys``: ``route_keys(routes)``.
    With ``every`` the routes after the walk stopped are listed too (``stopped_by``), for
    ``alerts preview --explain``; without, routing stops there."""
    origin = entry if isinstance(entry, Item) else Item(entry)
    item = origin.item
    seen: set[str] = set()
    steps: list[RouteStep] = []
    stopped = ""
    for key, route in zip(keys, routes, strict=True):
        if stopped:
            if not every:
                break
            steps.append(RouteStep(key, route, False, stopped_by=stopped))
            continue
        miss = scope_miss(route, item, exploit)
        if miss:
            steps.append(RouteStep(key, route, False, why_not=miss))
            continue
        plain, escalated = _targets(route, item)
        if not plain and not escalated:
            steps.append(RouteStep(key, route, False, why_not=(
                f"event {event_name(item)} not in its events "
                f"({', '.join(route.events) or 'none'})")))
            continue
        deliveries: list[Delivery] = []
        reached: list[str] = []
        for receiver, escalation in [*((r, False) for r in plain),
                                     *((r, True) for r in escalated)]:
            if receiver in seen:
                reached.append(receiver)
                continue
            seen.add(receiver)
            deliveries.append(Delivery(receiver, key, item, escalation=escalation,
                                       source=origin.source, source_id=origin.source_id))
        steps.append(RouteStep(key, route, True, tuple(deliveries), tuple(reached)))
        if not route.continue_:
            stopped = key
    return steps


def route_items(items: Iterable[AlertItem | Item], routes: Sequence[RouteConfig],
                exploit: Mapping[str, ExploitInfo] | None = None) -> list[Delivery]:
    """Every (receiver, item) pair the routes produce, in item order then route order."""
    keys = route_keys(routes)
    return [d for entry in items for step in walk(entry, routes, keys, exploit)
            for d in step.deliveries]


def _covers(first: RouteConfig, later: RouteConfig) -> bool:
    """``first`` (without continue) takes every item ``later`` could take."""
    if first.continue_:
        return False
    wide = all(g == ("*",) for g in (first.registries, first.projects, first.repositories))
    if not wide or first.min_severity > later.min_severity:
        return False
    later_events = set(later.events) | ({SLA_OVERDUE} if later.escalate_to else set())
    first_events = set(first.events) | ({SLA_OVERDUE} if first.escalate_to else set())
    return bool(later_events) and later_events <= first_events and (
        not later.repeat_open_every or bool(first.repeat_open_every)
    )


def unmatched_routes(config: Config) -> list[str]:
    """Problems that make a route unable to match anything, one line each, for `config check`.

    A route is reported when it names no known event (and escalates nothing), when its registry
    globs name no configured registry, when it names an unknown receiver, or when an earlier
    route without ``continue`` already takes everything it could take.
    """
    problems: list[str] = []
    registries = [r.name for r in config.registries]
    receivers = {r.name for r in config.receivers}
    for index, route in enumerate(config.routes):
        where = f"route[{_config_label(route, index)}]"
        unknown = [e for e in route.events if e not in EVENTS]
        if unknown:
            problems.append(f"{where}.events: unknown {', '.join(unknown)}; valid: "
                            f"{', '.join(EVENTS)}")
        if not [e for e in route.events if e in EVENTS] and not route.escalate_to:
            problems.append(f"{where}: no events, so it can never match")
        if registries and not any(_any(route.registries, name) for name in registries):
            problems.append(f"{where}.registries: {list(route.registries)} names no configured "
                            f"registry (configured: {', '.join(registries)})")
        for field, names in (("receivers", route.receivers), ("escalate_to", route.escalate_to)):
            for name in names:
                if name not in receivers:
                    problems.append(f"{where}.{field}: unknown receiver {name!r}")
        if not route.receivers and not route.escalate_to:
            problems.append(f"{where}: no receivers, so it sends nothing")
        for earlier_index in range(index):
            earlier = config.routes[earlier_index]
            first = _config_label(earlier, earlier_index)
            if _covers(earlier, route):
                problems.append(f"{where}: can never match: the earlier route[{first}] (without "
                                "continue) takes everything it would")
                break
            lost = _shadowed(earlier, route)
            if lost:
                problems.append(f"{where}: never receives {lost}: the earlier route[{first}] "
                                f"(without continue) takes them first; set continue = true on "
                                f"route[{first}] or move this route above it")
    used = {n for r in config.routes for n in (*r.receivers, *r.escalate_to)}
    problems.extend(f"receiver[{r.name}]: no route sends to it" for r in config.receivers
                    if r.name not in used)
    return problems


def _shadowed(first: RouteConfig, later: RouteConfig) -> str:
    """What of ``later`` an earlier wide route without continue always takes first, in words
    (``new, fix_available at High and above``), or "" when nothing is lost."""
    if first.continue_ or not all(g == ("*",) for g in (first.registries, first.projects,
                                                        first.repositories)):
        return ""
    shared = [e for e in later.events if e in first.events]
    if not shared:
        return ""
    floor = max(first.min_severity, later.min_severity)
    return f"{', '.join(shared)} at {floor.label} and above"


def routing_tree(config: Config) -> list[str]:
    """The routes as they are tried, for ``config check``: matchers, receivers, continue."""
    out = []
    keys = route_keys(config.routes)
    for index, (key, r) in enumerate(zip(keys, config.routes, strict=True)):
        scope = "/".join(",".join(g) for g in (r.registries, r.projects, r.repositories))
        line = (f"{index + 1}. {key}: {scope} severity >= {r.min_severity.label}, "
                f"events {', '.join(r.events) or '(none)'} -> {', '.join(r.receivers) or '-'}")
        if r.escalate_to:
            line += f"; overdue -> {', '.join(r.escalate_to)}"
        line += f" ({r.group}{', continue' if r.continue_ else ', stops here'})"
        out.append(line)
    return out
