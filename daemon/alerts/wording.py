"""The words of a message, shared by every channel's renderer (pure).

Every string from scan data passes through ``clip``/``one_line`` so that hostile input stays
bounded; escaping for a channel's markup is the renderer's job (``alerts/render.py``).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from daemon.alerts import links
from daemon.alerts.message import Action, FirstSeen, Image, Message, Overdue, Problem
from daemon.model import Severity

MAX_FIELD = 200  # characters of one scan-data string (package, tag, id, …)
MAX_DETAIL = 500  # characters of a scan log excerpt
MAX_IMAGES = 20  # images listed per action in text and email


def clip(value: str, limit: int = MAX_FIELD) -> str:
    """At most ``limit`` characters, control characters (but newlines) replaced."""
    value = "".join(c if c.isprintable() or c == "\n" else "\N{REPLACEMENT CHARACTER}"
                    for c in value[: limit + 1])
    return value if len(value) <= limit else value[: limit - 1] + "…"


def one_line(value: str, limit: int = MAX_FIELD) -> str:
    return clip(" ".join(value[: limit * 2].split()), limit)


def cvss_words(score: float | None) -> str:
    """``CVSS 9.8``, or "" for an unscored vulnerability."""
    return "" if score is None else f"CVSS {score:.1f}"


def findings_hint(message: Message) -> str:
    """The command that lists the message's findings (a test message has no registry)."""
    if message.kind == "test":
        return "scanwatch findings"
    return f"scanwatch findings --registry {shlex.quote(one_line(message.registry))}"


def details_link(message: Message) -> str:
    """scanwatch's findings page for the message's registry, "" without ``public_url``."""
    return links.findings_page(message.public_url, message.registry)


def details(message: Message) -> str:
    """Where to see everything: the findings page where scanwatch serves one, else the command."""
    return details_link(message) or findings_hint(message)


def change_words(change: str, reason: str, *, tags: Sequence[str] = (),
                 previous: Severity | None = None, severity: Severity | None = None) -> str:
    """The few words Slack and email show for why an item is there."""
    if change == "new":
        if reason == "advisory_published":
            return "newly published"
        if tags:
            return f"arrived with a push of {one_line(tags[0])}"
        return "arrived with a new image"
    if change == "fix_available":
        return "fix released"
    if change == "severity_changed":
        if previous is not None and severity is not None:
            return f"rescored {previous.label} → {severity.label}"
        return "rescored"
    if change == "reopened":
        return "ignore expired" if reason == "ignore_expired" else "reopened"
    if change == "reminder":
        return "still open"
    if change == "known_exploited":
        return {"kev_removed": "removed from CISA KEV",
                "in_kev": "arrived already known exploited (CISA KEV)"}.get(
            reason, "now known exploited (CISA KEV)")
    if change == "exploit_likely":
        return "exploitation likely (EPSS)"
    return one_line(change.replace("_", " "))


def why_text(action: Action) -> str:
    """``newly published: CVE-1, CVE-2; fix released: CVE-3`` for one action."""
    by_words: dict[str, list[str]] = {}
    for why in action.why:
        by_words.setdefault(why.words, []).append(one_line(why.vulnerability))
    return "; ".join(f"{words}: {', '.join(ids)}" for words, ids in by_words.items())


def counts_text(counts: Sequence[tuple[Severity, int]]) -> str:
    return ", ".join(f"{n} {s.label}" for s, n in counts)


def severity_summary(message: Message) -> str:
    """Every vulnerability of the message by severity, no-fix ones included and said:
    ``2 Critical (1 without a fix), 5 High``."""
    without = dict(message.severity_counts("no_fix"))
    out = []
    for level, n in message.severity_counts():
        extra = f" ({without[level]} without a fix)" if without.get(level) else ""
        out.append(f"{n} {level.label}{extra}")
    return ", ".join(out)


def subject(message: Message) -> str:
    """``[scanwatch] prod-harbor: 2 Critical (1 without a fix), 5 High; 3 fixes``, and the
    other sections."""
    parts: list[str] = []
    if message.fix_now or message.no_fix:
        parts.append(severity_summary(message))
    if message.fix_now:
        n = len(message.fix_now)
        parts.append(f"{n} fix{'es' if n != 1 else ''}")
    if message.first_seen:
        parts.append(first_seen_count(message))
    if message.overdue:
        parts.append(f"{len(message.overdue)} overdue")
    if message.fixed:
        parts.append(f"{message.fixed.findings} fixed")
    if message.problems:
        n = len(message.problems)
        parts.append(f"{n} scan problem{'s' if n != 1 else ''}")
    if message.heartbeat and not parts:
        parts.append(f"nothing new, {message.heartbeat.images_checked} images checked")
    if message.kind == "test":
        parts = ["test message"]
    return f"[scanwatch] {one_line(message.registry)}: {'; '.join(parts) or 'nothing to report'}"


def headline(message: Message) -> str:
    """``prod-harbor · nightly · 3 actions, 2 without a fix``."""
    bits = [one_line(message.registry)]
    if message.context:
        bits.append(one_line(message.context))
    n = len(message.fix_now) + len(message.no_fix)
    if n:
        summary = f"{n} action{'s' if n != 1 else ''}"
        if message.no_fix:
            summary += f", {len(message.no_fix)} without a fix"
        bits.append(summary)
    elif message.first_seen:
        bits.append(first_seen_count(message))
    elif message.heartbeat:
        bits.append("nothing new")
    return " · ".join(bits)


def image_names(image: Image) -> list[str]:
    """``project/repo:tag`` for each tag, else ``project/repo@sha256:0123456789ab``."""
    name = one_line(image.name)
    if image.tags:
        return [f"{name}:{one_line(t)}" for t in image.tags]
    if image.digests:
        return [f"{name}@{one_line(d)[:19]}" for d in image.digests]
    return [name]


def action_line(action: Action) -> str:
    pkg, inst = one_line(action.package), one_line(action.installed_version)
    if action.fix_version:
        return f"Upgrade {pkg} {inst} → {one_line(action.fix_version)}"
    if action.candidate_fixes:
        options = ", ".join(one_line(v) for v in action.candidate_fixes)
        return f"Upgrade {pkg} {inst} to a fixed version ({options})"
    return f"{pkg} {inst}"


def kev_lines(action: Action) -> list[str]:
    """One line per vulnerability of the action in CISA KEV: its name, due date, ransomware
    use and CISA's required action."""
    out = []
    for vid, e in action.exploit:
        if e.kev:
            due = f", due {e.due_date.isoformat()}" if e.due_date else ""
            ransom = ", used by ransomware" if e.ransomware else ""
            out.append(f"{one_line(vid)} is known exploited (CISA KEV: {one_line(e.kev_name)}"
                       f"{due}{ransom}): {one_line(e.required_action, MAX_DETAIL)}")
    return out


def vex_lines(action: Action) -> list[str]:
    """One line per VEX statement that speaks of the action without silencing it: the
    ``affected`` action statement, or that it is under investigation."""
    return [f"{one_line(vid)}: {one_line(note, MAX_DETAIL)}" for vid, note in action.vex]


def notes(action: Action) -> list[str]:
    """What the action's message says besides the upgrade: KEV entries, then VEX notes."""
    return kev_lines(action) + vex_lines(action)


def shared_line(action: Action) -> str:
    """The base-image hint; only set (``shared_images``) where a fix exists."""
    return (f"{action.shared_images} of these images share the same package version: "
            "rebuild from the updated base image.")


def overdue_line(o: Overdue) -> str:
    esc = " (escalated)" if o.escalation else ""
    due = (f"CISA KEV due {o.kev_due.isoformat()}" if o.kev_due is not None
           else f"SLA {o.deadline_days} days")
    return (f"{one_line(o.vulnerability)} ({o.severity.label}) {one_line(o.package)} in "
            f"{one_line(o.image.name)}, open {o.open_days} days ({due}){esc}")


def problem_line(p: Problem) -> str:
    what = "scan failed" if p.kind == "scan_failed" else "scanner unavailable"
    where = f" {image_names(p.image)[0]}" if p.image else ""
    detail = f": {one_line(p.detail, MAX_DETAIL)}" if p.detail else ""
    return f"{what}{where}{detail}"


def heartbeat_line(message: Message) -> str:
    hb = message.heartbeat
    assert hb is not None
    db = hb.scanner_db_updated_at.date().isoformat() if hb.scanner_db_updated_at else "unknown"
    line = f"Nothing new, {hb.images_checked} images checked, scanner DB of {db}."
    if hb.behind_db is None:
        return line
    if not hb.behind_db:
        return line + f" Every report of its {hb.images} images is from that DB."
    oldest = f", the oldest from {hb.oldest_behind.date().isoformat()}" if hb.oldest_behind \
        else ""
    return line + (f" {hb.behind_db} of {hb.images} images have reports older than it"
                   f"{oldest}: the rescans are on their way.")


def first_seen_count(message: Message) -> str:
    n = len(message.first_seen)
    return f"{n} repositor{'ies' if n != 1 else 'y'} first seen"


def first_seen_command(registry: str, f: FirstSeen) -> str:
    """The ``scanwatch findings`` command that lists a first-seen repository's findings."""
    args = ("--registry", one_line(registry), "--project", one_line(f.project),
            "--repository", one_line(f.repository))
    return "scanwatch findings " + " ".join(shlex.quote(a) for a in args)


def first_seen_what(f: FirstSeen) -> str:
    """``library/brandnew: 20 findings (2 Critical, 5 High)``."""
    n = f.findings
    counts = counts_text(f.severity_counts) if f.severity_counts else (
        f"highest {f.highest.label}")
    return f"{one_line(f.name)}: {n} finding{'s' if n != 1 else ''} ({counts})"


def first_seen_line(registry: str, f: FirstSeen) -> str:
    """``library/brandnew: 20 findings (2 Critical, 5 High); see `scanwatch findings …```."""
    return f"{first_seen_what(f)}; see `{first_seen_command(registry, f)}`"


FIRST_SEEN_TITLE = "First seen (new repositories, summarised)"
