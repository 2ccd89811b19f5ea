"""Alert building: events past each route's cursor → routed, silenced, grouped, rendered rows.

``build_and_queue`` is what a run (and ``run --once``) calls at its end, and what the scheduler
calls when a digest is due: the outbox rows are inserted and the routes' cursors moved in one
transaction (``daemon/store/outbox.py``), so a crash before the commit leaves every event for
the next pass and none is queued twice. ``plan`` is the same decision without writing, for
``scanwatch alerts preview``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from daemon import log
from daemon.alerts.dedup import Log, dedup
from daemon.alerts.events import (
    AlertItem,
    Item,
    OpenFinding,
    OverdueFinding,
    Reminder,
    ScanProblem,
)
from daemon.alerts.group import RunContext, due_reminders, first_run_registries, group
from daemon.alerts.message import Message
from daemon.alerts.render import format_for_url, render
from daemon.alerts.route import Delivery, in_scope, legacy_keys, route_items, route_keys
from daemon.alerts.silence import EXPIRY_HORIZON, apply_silences, expiry_warnings
from daemon.config_types import Config, RouteConfig
from daemon.diff import is_first_sight
from daemon.ignores import IgnoreRules, utc_day
from daemon.model import ChangeEvent, FindingKey

if TYPE_CHECKING:
    from daemon.store.db import Store

_log = log.get(__name__)


def digest_due(route: RouteConfig, last: datetime | None, now: datetime) -> bool:
    """The route's digest cron fired since its last digest (never before a first one)."""
    if last is None:
        return False
    from cronsim import CronSim

    start = last.astimezone(ZoneInfo(route.digest_timezone or "UTC"))
    return next(CronSim(route.digest_cron, start)) <= now


@dataclass(frozen=True)
class Planned:
    """Messages and the outbox rows (one per receiver URL) they become."""

    messages: list[Message]
    rows: list[dict[str, Any]]


def rows_for(message: Message, config: Config) -> list[dict[str, Any]]:
    """One outbox row per URL of the message's receiver, each rendered for its channel.

    URLs carry tokens, so rows name them by position (``url_index``), never by value.
    """
    receiver = config.receiver(message.receiver)
    if receiver is None:
        _log.warning("alert_receiver_unknown", receiver=message.receiver)
        return []
    findings = [[*_key(k), kind, value] for k, kind, value in message.findings]
    out = []
    for index, url in enumerate(receiver.urls):
        fmt = format_for_url(url.reveal(), receiver.format)
        r = render(message, fmt)
        payload = {"message": message.id, "url_index": index, "format": fmt, "title": r.title,
                   "body": r.body, "body_format": r.body_format, "registry": message.registry,
                   "kind": message.kind, "findings": findings}
        if r.body_format == "html":  # the plain-text part lists every id, as the text form does
            payload["text"] = render(message, "text").body
        out.append({"message_id": f"{message.id}.{index}", "receiver": message.receiver,
                    "route": ",".join(message.routes), "payloads": json.dumps(payload)})
    return out


def _key(k: FindingKey) -> list[str]:
    return [k.registry, k.project, k.repository, k.vulnerability, k.package]


def admit(deliveries: Iterable[Delivery], due: set[str],
          cursors: Mapping[str, tuple[int, int, datetime | None]]) -> list[Delivery]:
    """The deliveries of due routes that their route has not read yet (pure): an event or a
    failed scan is admitted when its history id is past the route's cursor; what this run
    found (no history row) is always new."""
    out = []
    for d in deliveries:
        if d.route not in due:
            continue
        if d.source:
            last_event, last_scan, _ = cursors.get(d.route, (0, 0, None))
            if d.source_id <= (last_event if d.source == "event" else last_scan):
                continue
        out.append(d)
    return out


def overdue_items(config: Config, open_findings: Sequence[OpenFinding], now: datetime
                  ) -> list[AlertItem]:
    """The open findings past their SLA deadline (``daemon/sla.py``), as alert items."""
    from daemon.sla import evaluate

    state = evaluate(((o, o.severity, o.opened_at or now) for o in open_findings
                      if o.opened_at is not None), config.sla, now,
                     {o: o.kev_due for o in open_findings if o.kev_due is not None})
    out: list[AlertItem] = []
    for item in state.overdue:
        o: OpenFinding = item.key  # type: ignore[assignment]
        out.append(OverdueFinding(o.finding, o.severity, item.first_seen,
                                  item.deadline - item.first_seen, o.installed_version,
                                  o.fix_version, o.tags, o.digests, item.kev_due))
    return out


def plan(
    config: Config,
    *,
    events: Sequence[tuple[int, ChangeEvent]],
    scan_problems: Sequence[tuple[int, ScanProblem]],
    problems: Sequence[ScanProblem],
    cursors: Mapping[str, tuple[int, int, datetime | None]],
    due_routes: Iterable[str],
    run_context: RunContext,
    now: datetime,
    open_findings: Sequence[OpenFinding] = (),
    notified: Log | None = None,
    rules: IgnoreRules | None = None,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> Planned:
    """Decide the messages for the due routes (pure): the stages silence → route → admit
    (cursors) → dedup (the notification log) → reminders → group → render, each a plain
    function of plain values. ``rules`` default to the config's ``[[ignore]]`` rules alone
    (no Harbor allowlists)."""
    notified = notified or {}
    if rules is None:
        rules = IgnoreRules(tuple(config.ignores))
    routes = config.routes
    by_key = dict(zip(route_keys(routes), routes, strict=True))
    due = set(due_routes)
    quiet = first_run_registries((e for _, e in events), run_context.known_repositories)
    if quiet:
        events = _drop_first_run(events, quiet)
    items = [Item(e, "event", eid) for eid, e in events]
    items += [Item(p, "scan", sid) for sid, p in scan_problems]
    items += [Item(p) for p in [*problems, *overdue_items(config, open_findings, now)]]
    if rules.vex:
        run_context = replace(run_context, vex_note=rules.vex_note)
    kept, silenced = apply_silences(items, rules, now)
    if silenced:
        _log.debug("alert_items_silenced", count=len(silenced))
    deliveries = dedup(admit(route_items(kept, routes, run_context.exploit), due, cursors),
                       notified)
    repeat = {k: r.repeat_open_every for k, r in by_key.items()
              if r.repeat_open_every and k in due}
    if repeat:
        reminders = [Reminder(o) for o in open_findings]
        kept_reminders, _ = apply_silences(reminders, rules, now)
        last_any: dict[tuple[str, FindingKey], datetime] = {
            slot: max(t.at for t in told) for slot, told in notified.items() if told}
        deliveries += dedup(due_reminders(
            [r for r in kept_reminders if isinstance(r, Reminder)],
            lambda r: [d for d in route_items([r], routes) if d.route in repeat],
            repeat, last_any, now), notified)
    return _messages(config, deliveries, by_key, due, run_context, now, open_findings, rules,
                     new_id)


def _drop_first_run(events: Sequence[tuple[int, ChangeEvent]], registries: frozenset[str]
                    ) -> list[tuple[int, ChangeEvent]]:
    """The events without the first-sight summaries of registries in their first run."""
    dropped: dict[str, list[int]] = {}
    kept = []
    for eid, ev in events:
        if is_first_sight(ev) and ev.finding.registry in registries:
            counts = dropped.setdefault(ev.finding.registry, [0, 0])
            counts[0] += ev.count
            counts[1] += 1
        else:
            kept.append((eid, ev))
    for registry, (findings, summaries) in sorted(dropped.items()):
        _log.info("alerts_first_sight_quiet", registry=registry, findings=findings,
                  summaries=summaries)
    return kept


def with_first_sight(ctx: RunContext, batch: Any) -> RunContext:
    """The run context with what a claimed batch knows of first sights (``store.outbox``)."""
    facts = batch.first_sight
    return replace(ctx, first_seen_counts=facts.counts, known_repositories=facts.known,
                   exploit=getattr(batch, "exploit", {}))


def with_project_ids(ctx: RunContext, stored: Mapping[tuple[str, str], int]) -> RunContext:
    """The run context with Harbor's project ids as the walks stored them (``store/projects``)
    under the run's own (fresher): digests, previews and intel alerts run without a walk."""
    return replace(ctx, project_ids={**stored, **ctx.project_ids})


def _messages(config: Config, deliveries: list[Delivery], by_key: Mapping[str, RouteConfig],
              due: set[str], ctx: RunContext, now: datetime,
              open_findings: Sequence[OpenFinding], rules: IgnoreRules,
              new_id: Callable[[], str]) -> Planned:
    immediate = [d for d in deliveries if by_key[d.route].group != "digest"]
    heartbeats = [(rec, reg) for k, r in by_key.items()
                  if k in due and r.heartbeat and r.group != "digest"
                  for reg in ctx.images_checked
                  if in_scope(r, ScanProblem("heartbeat", reg)) for rec in r.receivers]
    messages = group(immediate, ctx, now, heartbeats=heartbeats, new_id=new_id)
    warning = expiry_warnings(rules, open_findings, now)
    for key, route in by_key.items():
        if key not in due or route.group != "digest":
            continue
        lines = ([warning.text] if warning else []) + list(ctx.feed_notices) + list(
            ctx.coverage_notices)
        notices = {rec: lines for rec in route.receivers} if lines else {}
        mine = [d for d in deliveries if d.route == key]
        digest_ctx = replace(ctx, name=key, kind="digest")
        messages += group(mine, digest_ctx, now, notices=notices, new_id=new_id)
    rows = [row for m in messages for row in rows_for(m, config)]
    return Planned(messages, rows)


def _coverage_notices(store: Store, config: Config) -> tuple[str, ...]:
    """The registries whose last run found the rescans falling behind the scanner's DB."""
    from daemon.store.runs import latest_coverage

    with store.reading() as conn:
        found = latest_coverage(conn, [r.name for r in config.registries])
    return tuple(str(record["falling_behind"]) for _, record in
                 (found[name] for name in sorted(found)) if record.get("falling_behind"))


def build_and_queue(
    store: Store,
    config: Config,
    *,
    run_context: RunContext,
    now: datetime,
    problems: Sequence[ScanProblem] = (),
    rules: IgnoreRules | None = None,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> list[str]:
    """Queue the messages for every due route; return the outbox message ids.

    Immediate routes are due at every call (the end of each run); digest routes when their cron
    fired since their last digest. ``problems`` are this run's registry-wide problems (a
    scanner that is down); failed scans are read from the history. ``rules`` default to those
    in force: the config's and the Harbor allowlists stored for the registries that use them.
    """
    from daemon.lineage.fetch import with_lineage
    from daemon.store import outbox as store_outbox

    routes = config.routes
    keys = route_keys(routes)
    if not keys:
        return []
    if rules is None:
        rules = store.ignore_rules(config)
    if config.feeds and not run_context.feed_notices:
        from daemon.intel.status import feed_states, stale_notices

        run_context = replace(run_context, feed_notices=stale_notices(
            feed_states(store, config.feeds, now)))
    if any(r.group == "digest" for r in routes) and not run_context.coverage_notices:
        run_context = replace(run_context, coverage_notices=_coverage_notices(store, config))
    receivers = {n for r in routes for n in (*r.receivers, *r.escalate_to)}
    notified = store_outbox.last_notified(store, receivers)
    open_findings = _open_findings(store, config, rules)
    run_context = with_lineage(run_context, store, [r.name for r in config.registries])
    run_context = with_project_ids(run_context, store.project_ids())

    def build(batch: Any) -> None:
        due = []
        for key, route in zip(keys, routes, strict=True):
            cur = batch.cursors[key]
            if route.group == "digest" and not digest_due(route, cur.last_digest_at, now):
                if not cur.known:  # start the digest clock now
                    batch.advance[key] = replace(cur, last_digest_at=now)
                continue
            due.append(key)
            batch.advance[key] = replace(
                cur, last_event_id=batch.max_event_id, last_scan_id=batch.max_scan_id,
                last_digest_at=now if route.group == "digest" else cur.last_digest_at)
        scan_problems = [(s.id, ScanProblem("scan_failed", s.registry, s.project, s.repository,
                                            s.digest, (), s.error or s.status, s.at))
                         for s in batch.failed_scans]
        planned = plan(
            config, events=batch.events, scan_problems=scan_problems, problems=problems,
            cursors={k: (c.last_event_id, c.last_scan_id, c.last_digest_at)
                     for k, c in batch.cursors.items()},
            due_routes=due, run_context=with_first_sight(run_context, batch), now=now,
            open_findings=open_findings,
            notified=notified, rules=rules, new_id=new_id)
        batch.rows.extend(planned.rows)

    ids = store_outbox.claim_and_queue(store, keys, build, now, legacy=legacy_keys(routes))
    _log.info("alerts_queued", messages=len(ids))
    return ids


def _open_findings(store: Store, config: Config, rules: IgnoreRules) -> list[OpenFinding]:
    """The open findings a stage needs, read only when one needs them; the silencing stage
    decides which of them are ignored. Reminders (``repeat_open_every``) need every one; the
    SLA stage only those past their deadline (by severity, or by KEV's due date with
    ``kev_due_date``); the expiry warning only those a rule expiring within its horizon could
    hide: a registry of 100,000 images is not read for a few."""
    from daemon.sla import deadlines
    from daemon.store import intel as store_intel
    from daemon.store.findings import FindingQuery, output_order

    now = datetime.now(UTC)
    kev: dict[str, tuple[Any, Any]] = {}
    if config.sla.kev_due_date:
        with store.engine.connect() as conn:
            kev = store_intel.kev_dates(conn)
    if any(r.repeat_open_every for r in config.routes):
        # Unordered batches of repositories (no spill, no sort in SQL), then the listing's order.
        batches = store.finding_batches(FindingQuery(include_ignored=True), rules=None, now=now)
        rows = [r for batch in batches for r in batch]
    else:
        found = {r.key: r for r in store.overdue_findings(deadlines(config.sla), now)}
        today = utc_day(now)
        expiring = IgnoreRules(tuple(r for r in rules.rules
                                     if today <= r.expires <= today + EXPIRY_HORIZON))
        if expiring:
            found.update((r.key, r) for r in store.findings_of(expiring.may_match, now))
        if kev:  # a listed CVE's due date may come before its severity's deadline
            found.update((r.key, r) for r in store.findings_of(lambda v, _: v in kev, now))
        rows = list(found.values())
    rows.sort(key=output_order)
    return [OpenFinding(r.key, r.severity, r.first_seen,
                        r.installed_versions[0] if r.installed_versions else "", r.fix_version,
                        r.tags, r.digests,
                        kev[r.key.vulnerability][1] if r.key.vulnerability in kev else None,
                        r.cvss_v3, r.cvss_vector)
            for r in rows]


