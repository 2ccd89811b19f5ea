"""Grouping: deliveries become one message per receiver and registry (pure).

The unit of a message is the remediation action, (package, installed version) → the fix that
resolves every vulnerability it carries (``daemon/remedy.py`` groups and chooses). Findings
without a fix form "no fix yet" actions; fixed findings are summarised; overdue findings and
scan problems get their own sections. An empty group sends nothing, unless a heartbeat was
asked for.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from daemon import remedy
from daemon.alerts import links
from daemon.alerts import wording as w
from daemon.alerts.events import OverdueFinding, Reminder, ScanProblem, change_of, scope
from daemon.alerts.message import (
    Action,
    FirstSeen,
    FixedSummary,
    Heartbeat,
    Image,
    Message,
    Overdue,
    Problem,
    Rebuild,
    Vuln,
    Why,
)
from daemon.alerts.route import Delivery
from daemon.diff import is_first_sight
from daemon.lineage.advice import Advisor
from daemon.model import ChangeEvent, ChangeKind, ExploitInfo, FindingKey, Severity

BASE_IMAGE_THRESHOLD = 3  # this many images on one vulnerable version: suggest the base image


@dataclass(frozen=True)
class RunContext:
    """What the grouping needs to know about the run (or digest) that produced the items."""

    name: str = ""  # the schedule's name, "digest", "preview", …
    kind: str = "immediate"  # "immediate" or "digest"
    registry_urls: Mapping[str, str] = field(default_factory=dict)
    project_ids: Mapping[tuple[str, str], int] = field(default_factory=dict)
    images_checked: Mapping[str, int] = field(default_factory=dict)  # per registry
    scanner_db_updated_at: Mapping[str, datetime] = field(default_factory=dict)  # per registry
    # (registry, project, repository) → findings per severity of a first-sight summary
    first_seen_counts: Mapping[tuple[str, str, str], Mapping[Severity, int]] = field(
        default_factory=dict)
    # registry → (project, repository) that history holds findings for: tells a registry's
    # first run (``first_run_registries``) from a repository added later
    known_repositories: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    public_url: str = ""  # [daemon] public_url: scanwatch's pages (alerts/links.py)
    advisory_url: str = ""  # [daemon] advisory_url: the template of advisory links
    # registry → its lineage (daemon/lineage/advice.py): where each finding comes from
    lineage: Mapping[str, Advisor] = field(default_factory=dict)
    # CVE → what KEV and EPSS say of it (the copies in force; absent: neither lists it)
    exploit: Mapping[str, ExploitInfo] = field(default_factory=dict)
    # "feed kev is stale: …" lines, for the next digest (``intel.status.stale_notices``)
    feed_notices: tuple[str, ...] = ()
    # finding → what a VEX statement that does not silence says of it ("VEX affected: …",
    # ``IgnoreRules.vex_note``); None where no VEX statement is in force
    vex_note: Callable[[FindingKey], str] | None = None
    # registry → the rescan trickle's coverage after the run (``RegistryRun.coverage_record``)
    coverage: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # "rescans falling behind" lines of the last runs, for the next digest
    coverage_notices: tuple[str, ...] = ()


def context_for(config: Any, **values: Any) -> RunContext:
    """A run context carrying what the configuration says about links (Harbor's URLs,
    ``public_url``, ``advisory_url``), plus ``values``."""
    base: dict[str, Any] = {"registry_urls": {r.name: r.url for r in config.registries},
                            "public_url": config.daemon.public_url,
                            "advisory_url": config.daemon.advisory_url}
    return RunContext(**{**base, **values})


def harbor_link(ctx: RunContext, registry: str, project: str, repository: str,
                digest: str = "") -> str:
    """The artifact's page in Harbor's UI, else its repository, else the project list."""
    base = ctx.registry_urls.get(registry, "").rstrip("/")
    if not base:
        return ""
    pid = ctx.project_ids.get((registry, project))
    if pid is None:
        return f"{base}/harbor/projects"
    repo = f"{base}/harbor/projects/{pid}/repositories/{quote(repository, safe='')}"
    if digest:
        return f"{repo}/artifacts-tab/artifacts/{quote(digest, safe=':')}"
    return repo


def _image(ctx: RunContext, registry: str, project: str, repository: str,
           tags: set[str], digests: set[str]) -> Image:
    ordered = tuple(sorted(digests))
    one = ordered[0] if len(ordered) == 1 else ""
    return Image(project, repository, tuple(sorted(tags)), ordered,
                 harbor_link(ctx, registry, project, repository, one),
                 links.image_page(ctx.public_url, registry, project, repository, one))


def _action(ctx: RunContext, registry: str, found: remedy.Remedy[_Facts]) -> Action:
    images: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for f in found.members:
        tags, digests = images.setdefault((f.key.project, f.key.repository), (set(), set()))
        tags.update(f.tags)
        digests.update(f.digests)
    shown = tuple(_image(ctx, registry, p, r, t, d) for (p, r), (t, d) in sorted(images.items()))
    count = max(len(shown), len({d for _, ds in images.values() for d in ds}))
    # The base image hint helps only where rebuilding fixes something: a fix exists.
    helps = bool(found.fix_version or found.candidate_fix_versions)
    # Where lineage names the source, it replaces the guess about a shared base image.
    guess = helps and count >= BASE_IMAGE_THRESHOLD and found.source in ("", "unknown")
    return Action(found.package, found.installed_version, found.fix_version,
                  found.vulnerabilities, shown, found.candidate_fix_versions,
                  shared_images=count if guess else 0,
                  reminder=all(f.reminder for f in found.members),
                  why=_whys(found.vulnerabilities, found.members),
                  source=found.source, base_image=found.base_image,
                  rebuild_on=found.rebuild_on, step=found.step,
                  exploit=tuple((v.id, ctx.exploit[v.id]) for v in found.vulnerabilities
                                if v.id in ctx.exploit),
                  vex=_vex_notes(ctx, found))


def _vex_notes(ctx: RunContext, found: remedy.Remedy[_Facts]) -> tuple[tuple[str, str], ...]:
    """(vulnerability, note) of the action's findings that a VEX statement speaks of without
    silencing them (``affected`` with its action statement, ``under_investigation``)."""
    if ctx.vex_note is None:
        return ()
    notes: dict[tuple[str, str], None] = {}
    for f in found.members:
        note = ctx.vex_note(f.key)
        if note:
            notes[(f.key.vulnerability, note)] = None
    return tuple(sorted(notes))


def rebuilds(actions: Sequence[Action], pushed: Mapping[str, datetime | None]
             ) -> tuple[Rebuild, ...]:
    """The fix-now actions that a newer base fixes, grouped by (old base, newer base): most
    vulnerabilities first."""
    groups: dict[tuple[str, str], list[Action]] = defaultdict(list)
    for a in actions:
        if a.source == "base" and a.rebuild_on:
            groups[(a.base_image, a.rebuild_on)].append(a)
    out = []
    for (base, target), members in groups.items():
        images: dict[tuple[str, str], Image] = {}
        own_repo = base.split("@", 1)[0].rsplit(":", 1)[0]  # the base's repository itself
        for a in members:
            for i in a.images:
                if i.name == own_repo:
                    continue
                kept = images.get((i.project, i.repository))
                images[(i.project, i.repository)] = i if kept is None else Image(
                    i.project, i.repository, tuple(sorted({*kept.tags, *i.tags})),
                    tuple(sorted({*kept.digests, *i.digests})), kept.link)
        vulns = {v.id: v for a in members for v in a.vulnerabilities}
        out.append(Rebuild(base, target, tuple(images[k] for k in sorted(images)),
                           tuple(sorted(vulns.values(), key=lambda v: (-v.severity, v.id))),
                           pushed.get(target)))
    return tuple(sorted(out, key=lambda r: (-len(r.vulnerabilities), r.base_image)))


# Which change explains a vulnerability best when one message carries several of it.
_CHANGE_RANK = {"known_exploited": 0, "new": 1, "reopened": 2, "exploit_likely": 3,
                "fix_available": 4, "severity_changed": 5, "reminder": 6}


def _whys(vulns: Sequence[Vuln], members: Sequence[_Facts]) -> tuple[Why, ...]:
    def rank(f: _Facts) -> tuple[int, str, str]:
        return (_CHANGE_RANK.get(f.change, 9), f.reason, f.words)

    best: dict[str, _Facts] = {}
    for f in members:  # the best-ranked change, whatever the order of the deliveries
        kept = best.get(f.key.vulnerability)
        if kept is None or rank(f) < rank(kept):
            best[f.key.vulnerability] = f
    return tuple(Why(v.id, best[v.id].change, best[v.id].reason, best[v.id].words)
                 for v in vulns if v.id in best)


def priority(a: Action) -> tuple[int, float, int, int, int, str, str]:
    """The order of actions (documented in README): known exploited (CISA KEV) first, then the
    highest EPSS score, worst severity, most images (reach), most vulnerabilities, then
    package and version."""
    return (-int(a.kev), -(a.epss or 0.0), -a.top_severity, -len(a.images),
            -len(a.vulnerabilities), a.package, a.installed_version)


@dataclass(frozen=True, slots=True)
class _Facts:
    key: FindingKey
    severity: Severity
    installed: str
    fix: str
    tags: tuple[str, ...]
    digests: tuple[str, ...]
    reminder: bool
    change: str  # as history prints it: the event's kind, or "reminder"
    reason: str
    words: str  # wording.change_words
    cvss_v3: float | None = None
    cvss_vector: str = ""


def _facts(item: ChangeEvent | Reminder) -> _Facts:
    if isinstance(item, Reminder):
        o = item.open
        return _Facts(o.finding, o.severity, o.installed_version, o.fix_version, o.tags,
                      o.digests, True, "reminder", "still_open", w.change_words("reminder", ""),
                      o.cvss_v3, o.cvss_vector)
    change, reason = item.kind.value, item.reason.value
    words = w.change_words(change, reason, tags=item.tags, previous=item.previous_severity,
                           severity=item.severity)
    return _Facts(item.finding, item.severity, item.installed_version, item.fix_version,
                  item.tags, item.digests, False, change, reason, words, item.cvss_v3,
                  item.cvss_vector)


def first_run_registries(events: Iterable[ChangeEvent],
                         known: Mapping[str, frozenset[tuple[str, str]]]) -> frozenset[str]:
    """Registries whose events are all first-sight summaries covering every repository that
    history holds findings for (``known``): the registry's first run, announced by nobody."""
    covered: dict[str, set[tuple[str, str]]] = defaultdict(set)
    other: set[str] = set()
    for e in events:
        k = e.finding
        if is_first_sight(e):
            covered[k.registry].add((k.project, k.repository))
        else:
            other.add(k.registry)
    return frozenset(reg for reg, repos in covered.items()
                     if reg not in other and known.get(reg, frozenset()) <= repos)


def _first_seen(ctx: RunContext, registry: str, events: Sequence[ChangeEvent]
                ) -> tuple[FirstSeen, ...]:
    """One line per repository (its artifacts' summaries added up), worst first."""
    by_repo: dict[tuple[str, str], list[ChangeEvent]] = defaultdict(list)
    for e in events:
        by_repo[(e.finding.project, e.finding.repository)].append(e)
    out = []
    for (project, repository), evs in by_repo.items():
        counts = ctx.first_seen_counts.get((registry, project, repository), {})
        out.append(FirstSeen(
            project, repository, sum(e.count for e in evs), max(e.severity for e in evs),
            tuple(sorted(((s, n) for s, n in counts.items() if n), key=lambda kv: -kv[0])),
            harbor_link(ctx, registry, project, repository)))
    return tuple(sorted(out, key=lambda f: (-f.highest, -f.findings, f.name)))


def build_message(
    receiver: str,
    registry: str,
    deliveries: Sequence[Delivery],
    ctx: RunContext,
    now: datetime,
    message_id: str,
    notices: Sequence[str] = (),
) -> Message:
    """One receiver's message about one registry from its deliveries (all of that registry)."""
    entries: list[remedy.Entry[_Facts]] = []
    fixed: list[ChangeEvent] = []
    overdue: list[Overdue] = []
    problems: list[Problem] = []
    reported: dict[tuple[FindingKey, str, str], None] = {}
    first_sights: list[ChangeEvent] = []
    advisor: Advisor | None = None
    asked = False  # the registry's lineage is read when a finding first needs it
    pushed: dict[str, datetime | None] = {}
    for d in deliveries:
        item = d.item
        if isinstance(item, ChangeEvent) and is_first_sight(item):
            first_sights.append(item)  # no finding of its own: nothing for the log
            continue
        if isinstance(item, ScanProblem):
            image = None
            if item.project:
                image = Image(item.project, item.repository, item.tags,
                              (item.digest,) if item.digest else (),
                              harbor_link(ctx, registry, item.project, item.repository,
                                          item.digest))
            problems.append(Problem(item.kind, image, item.detail))
            continue
        if isinstance(item, OverdueFinding):
            k = item.finding
            image = _image(ctx, registry, k.project, k.repository, set(item.tags),
                           set(item.digests))
            overdue.append(Overdue(k.vulnerability, k.package, item.severity, image,
                                   max(0, (now - item.opened_at) // timedelta(days=1)),
                                   item.deadline.days, d.escalation, item.kev_due))
            reported[(k, *change_of(item))] = None
            continue
        if isinstance(item, ChangeEvent) and item.kind is ChangeKind.FIXED:
            fixed.append(item)
            reported[(item.finding, *change_of(item))] = None
            continue
        f = _facts(item)
        reported[(f.key, *change_of(item))] = None
        if not asked:
            advisor, asked = ctx.lineage.get(registry), True
        src = advisor.source(f.digests, f.key.vulnerability, f.key.package, f.installed) \
            if advisor is not None else None
        entries.append(remedy.Entry(
            f.key.package, f.installed,
            Vuln(f.key.vulnerability, f.severity, f.fix, f.cvss_v3, f.cvss_vector), member=f,
            source=src.kind if src else "", base_image=src.base_image if src else "",
            rebuild_on=src.rebuild_on if src else "", step=src.step if src else ""))
        if src is not None and src.rebuild_on:
            pushed[src.rebuild_on] = src.rebuild_pushed_at
    # The findings without a fix form their own "watch" actions, apart from the fixable ones.
    fix_now = sorted((_action(ctx, registry, r) for r in remedy.plan(
        e for e in entries if e.vuln.fix_version.strip())), key=priority)
    no_fix = sorted((_action(ctx, registry, r) for r in remedy.plan(
        e for e in entries if not e.vuln.fix_version.strip())), key=priority)
    return Message(
        id=message_id,
        receiver=receiver,
        registry=registry,
        routes=tuple(dict.fromkeys(d.route for d in deliveries)),
        kind=ctx.kind,
        context=ctx.name,
        created_at=now,
        fix_now=tuple(fix_now),
        no_fix=tuple(no_fix),
        fixed=_fixed_summary(fixed),
        overdue=tuple(sorted(overdue, key=lambda o: (-o.severity, -o.open_days,
                                                     o.vulnerability, o.image.name))),
        problems=tuple(problems),
        notices=tuple(notices),
        first_seen=_first_seen(ctx, registry, first_sights),
        rebuilds=rebuilds(fix_now, pushed),
        findings=tuple(reported),
        public_url=ctx.public_url,
        advisory_url=ctx.advisory_url,
    )


def _fixed_summary(events: Sequence[ChangeEvent]) -> FixedSummary | None:
    if not events:
        return None
    reasons = Counter(e.reason.value for e in events)
    images = sorted({f"{e.finding.project}/{e.finding.repository}" for e in events})
    vulns = sorted({e.finding.vulnerability for e in events})
    return FixedSummary(len({e.finding for e in events}), tuple(images),
                        tuple(sorted(reasons.items())), tuple(vulns))


def group(
    deliveries: Iterable[Delivery],
    ctx: RunContext,
    now: datetime,
    *,
    heartbeats: Iterable[tuple[str, str]] = (),
    notices: Mapping[str, Sequence[str]] | None = None,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> list[Message]:
    """Messages, one per (receiver, registry) that has something to say.

    ``heartbeats`` names (receiver, registry) pairs that want a "nothing new" message when they
    would otherwise get none. ``notices`` adds lines (per receiver) to that receiver's messages.
    """
    by_target: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
    for d in deliveries:
        registry = scope(d.item)[0]
        by_target[(d.receiver, registry)].append(d)
    notices = notices or {}
    out: list[Message] = []
    for (receiver, registry), items in sorted(by_target.items()):
        message = build_message(receiver, registry, items, ctx, now, new_id(),
                                notices.get(receiver, ()))
        if not message.empty:
            out.append(message)
    sent = {(m.receiver, m.registry) for m in out}
    for receiver, registry in sorted(set(heartbeats) - sent):
        out.append(Message(
            id=new_id(), receiver=receiver, registry=registry, routes=(), kind="heartbeat",
            context=ctx.name, created_at=now, notices=tuple(notices.get(receiver, ())),
            public_url=ctx.public_url, advisory_url=ctx.advisory_url,
            heartbeat=_heartbeat(ctx, registry),
        ))
    return out


def _heartbeat(ctx: RunContext, registry: str) -> Heartbeat:
    coverage = ctx.coverage.get(registry)
    oldest = coverage.get("oldest_behind") if coverage else None
    return Heartbeat(ctx.images_checked.get(registry, 0), ctx.scanner_db_updated_at.get(registry),
                     behind_db=int(coverage.get("behind_db") or 0) if coverage else None,
                     images=int(coverage.get("images") or 0) if coverage else 0,
                     oldest_behind=datetime.fromisoformat(oldest) if oldest else None)


def due_reminders(
    open_findings: Iterable[Reminder],
    deliveries_for: Callable[[Reminder], Sequence[Delivery]],
    repeat_every: Mapping[str, timedelta],
    last_sent: Mapping[tuple[str, FindingKey], datetime],
    now: datetime,
) -> list[Delivery]:
    """Reminder deliveries whose route's ``repeat_open_every`` elapsed since the last send.

    ``deliveries_for`` routes a reminder (``route.route_items``); ``repeat_every`` maps a route
    key to its interval; ``last_sent`` is the notification log's latest send per
    (receiver, finding). A finding never sent to a receiver is not "reminded" (it was silenced
    or below threshold when it appeared, or it predates the route).
    """
    out: list[Delivery] = []
    for reminder in open_findings:
        for d in deliveries_for(reminder):
            every = repeat_every.get(d.route)
            last = last_sent.get((d.receiver, reminder.open.finding))
            if every and last is not None and now - last >= every:
                out.append(d)
    return out
