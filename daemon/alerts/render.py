"""Rendering: one message model, one form per channel (pure).

- ``text``: plain text, every vulnerability id of every section listed in full.
- ``slack``: Slack mrkdwn. Every string from scan data is escaped (``&``, ``<``, ``>``), so no
  ``<!channel>``, ``<@U…>`` or ``<url|text>`` markup can pass through; the body stays under
  ``SLACK_MAX_CHARS`` and, where it is cut, points to ``scanwatch findings``.
- ``email``: an HTML body from ``templates/email.html.j2`` (Jinja2, autoescaped, inline CSS:
  a severity summary, colour, advisory links; the outbox sends the ``text`` form beside it as
  the text/plain part, so it lists every vulnerability id too) and a subject such as
  ``[scanwatch] prod-harbor: 2 Critical (1 without a fix), 5 High; 3 fixes``.
- ``json``: the documented ``scanwatch.alert/v2`` document (``to_document``), as a JSON string.

Every vulnerability says why it is there: its change in a few words (``wording.change_words``)
in text, Slack and email, its ``change`` and ``reason`` as ``history`` prints them in JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from daemon.alerts import lineage_words as lw
from daemon.alerts import links
from daemon.alerts import wording as w
from daemon.alerts.message import Action, FirstSeen, Image, Message, Vuln
from daemon.model import ExploitInfo, Severity

SCHEMA = "scanwatch.alert/v2"
SLACK_MAX_CHARS = 12000  # well under Slack's 40k message text and apprise's 35k body cap
SLACK_MAX_IDS = 10  # vulnerability ids listed per action in Slack
SLACK_MAX_IMAGES = 5
SLACK_MAX_FIRST_SEEN = 10  # first-seen repositories listed in Slack
MAX_JSON_ACTIONS = 1000
FORMATS = ("text", "slack", "email", "json")


@dataclass(frozen=True, slots=True)
class Rendered:
    """What one channel sends: a title, a body and apprise's body format."""

    format: str
    title: str
    body: str
    body_format: str  # "text", "html" or "markdown" (apprise NotifyFormat values)


# -- plain text -------------------------------------------------------------------------------


def render_text(message: Message) -> Rendered:
    """Plain text; every vulnerability id listed, images capped at MAX_IMAGES per action."""
    out = [w.headline(message), ""]
    if message.rebuilds:
        out.append("Rebuild")
        for r in message.rebuilds:
            out.append(f"- {lw.rebuild_line(r, message.created_at)}")
            out.append(f"   in {lw.rebuild_images(r)}")
    if message.fix_now:
        out.append("Fix now")
        for n, a in enumerate(message.fix_now, 1):
            out.append(f"{n}. {w.action_line(a)}  ({w.counts_text(a.severity_counts())})")
            out.extend(_text_details(a))
    if message.no_fix:
        out.append("No fix yet (watch)")
        for a in message.no_fix:
            out.append(f"- {w.action_line(a)}  ({w.counts_text(a.severity_counts())})")
            out.extend(_text_details(a))
    if message.first_seen:
        out.append(w.FIRST_SEEN_TITLE)
        out.extend(f"- {w.first_seen_line(message.registry, f)}"
                   for f in message.first_seen[: w.MAX_IMAGES])
        out.extend(_first_seen_more(message, w.MAX_IMAGES))
    if message.fixed:
        out.append(_fixed_line(message))
        out.append("   " + ", ".join(w.one_line(v) for v in message.fixed.vulnerabilities))
    if message.overdue:
        out.append("Overdue (SLA)")
        out.extend(f"- {w.overdue_line(o)}" for o in message.overdue)
    if message.problems:
        out.append("Scan problems")
        out.extend(f"- {w.problem_line(p)}" for p in message.problems)
    if message.heartbeat:
        out.append(w.heartbeat_line(message))
    if message.notices:
        out.append("Notices")
        out.extend(f"- {w.one_line(n, w.MAX_DETAIL)}" for n in message.notices)
    out += ["", f"Details: {w.details(message)}"]
    return Rendered("text", w.subject(message), "\n".join(out) + "\n", "text")


def _fixed_line(message: Message) -> str:
    f = message.fixed
    assert f is not None
    reasons = ", ".join(f"{r}: {n}" for r, n in f.reasons)
    return f"Fixed since last time: {f.findings} findings in {len(f.images)} images ({reasons})"


def _first_seen_more(message: Message, shown: int) -> list[str]:
    more = len(message.first_seen) - shown
    if more <= 0:
        return []
    return [f"- and {more} more repositor{'ies' if more != 1 else 'y'}: "
            f"{w.findings_hint(message)}"]


def _ids(a: Action) -> list[str]:
    """``CVE-1 (High, CVSS 7.5, fix released)``: each id with its severity, its CVSS v3 score
    and why it is there."""
    out = []
    for v in a.vulnerabilities:
        why = a.why_of(v.id)
        words = [v.severity.label, w.cvss_words(v.cvss_v3), why.words if why else ""]
        out.append(f"{w.one_line(v.id)} ({', '.join(x for x in words if x)})")
    return out


def _names(a: Action) -> list[str]:
    return [n for i in a.images for n in w.image_names(i)]


def _text_details(a: Action) -> list[str]:
    names = _names(a)
    more = f" (and {len(names) - w.MAX_IMAGES} more)" if len(names) > w.MAX_IMAGES else ""
    lines = [f"   {', '.join(_ids(a))}", f"   in {', '.join(names[: w.MAX_IMAGES])}{more}"]
    lines.extend(f"   {line}" for line in w.notes(a))
    if a.shared_images:
        lines.append(f"   {w.shared_line(a)}")
    if lw.source_line(a):
        lines.append(f"   {lw.source_line(a)}")
    links = dict.fromkeys(i.link for i in a.images[: w.MAX_IMAGES] if i.link)
    lines.extend(f"   {link}" for link in links)
    return lines


# -- Slack ------------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Slack's three escapes; nothing in the result can open Slack markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str, label: str) -> str:
    """A link whose URL comes from config and quoting, and whose label is escaped data."""
    if not url:
        return slack_escape(label)
    safe_url = slack_escape(url).replace("|", "%7C")
    return f"<{safe_url}|{slack_escape(label).replace('|', '¦')}>"


def _slack_image(image: Image) -> str:
    names = w.image_names(image)
    shown = _slack_link(image.link, names[0])
    if len(names) > 1:
        shown += ", " + ", ".join(slack_escape(n) for n in names[1:3])
        if len(names) > 3:
            shown += f" (+{len(names) - 3} tags)"
    return shown


def _slack_ids(message: Message, a: Action) -> list[str]:
    """Each id linked to its advisory, with its severity and why it is there."""
    out = []
    for v, label in zip(a.vulnerabilities, _ids(a), strict=True):
        vid = w.one_line(v.id)
        out.append(_slack_link(links.advisory_link(v.id, message.advisory_url), vid)
                   + slack_escape(label[len(vid):]))
    return out


def _slack_action(message: Message, prefix: str, a: Action) -> list[str]:
    ids = _slack_ids(message, a)
    shown = ", ".join(ids[:SLACK_MAX_IDS])
    if len(ids) > SLACK_MAX_IDS:
        shown += f" … +{len(ids) - SLACK_MAX_IDS} more"
    images = ", ".join(_slack_image(i) for i in a.images[:SLACK_MAX_IMAGES])
    if len(a.images) > SLACK_MAX_IMAGES:
        images += f" (and {len(a.images) - SLACK_MAX_IMAGES} more)"
    head = slack_escape(w.action_line(a))
    lines = [f"{prefix} *{head}*  ({w.counts_text(a.severity_counts())})",
             f"      {shown}", f"      in {images}"]
    lines.extend(f"      {slack_escape(line)}" for line in w.notes(a))
    if a.shared_images:
        lines.append(f"      _{slack_escape(w.shared_line(a))}_")
    if lw.source_line(a):
        lines.append(f"      _{slack_escape(lw.source_line(a))}_")
    return lines


def _slack_code(text: str) -> str:
    """Inline code from data: escaped, and no backtick can close it early."""
    return f"`{slack_escape(text).replace('`', chr(39))}`"


def _slack_first_seen(registry: str, f: FirstSeen) -> str:
    return (f"• {slack_escape(w.first_seen_what(f))}; see "
            f"{_slack_code(w.first_seen_command(registry, f))}")


def render_slack(message: Message) -> Rendered:
    """Slack mrkdwn, escaped and bounded by SLACK_MAX_CHARS with a pointer where it is cut."""
    lines = [f"*{slack_escape(w.headline(message))}*"]
    if message.rebuilds:
        lines.append("*Rebuild*")
        for r in message.rebuilds:
            lines.append(f"• *{slack_escape(lw.rebuild_line(r, message.created_at))}*")
            lines.append(f"      in {slack_escape(lw.rebuild_images(r))}")
    if message.fix_now:
        lines.append("*Fix now*")
        for n, a in enumerate(message.fix_now, 1):
            lines.extend(_slack_action(message, f"{n}.", a))
    if message.no_fix:
        lines.append("*No fix yet (watch)*")
        for a in message.no_fix:
            lines.extend(_slack_action(message, "•", a))
    if message.first_seen:
        lines.append(f"*{slack_escape(w.FIRST_SEEN_TITLE)}*")
        lines.extend(_slack_first_seen(message.registry, f)
                     for f in message.first_seen[:SLACK_MAX_FIRST_SEEN])
        lines.extend(slack_escape(line)
                     for line in _first_seen_more(message, SLACK_MAX_FIRST_SEEN))
    if message.fixed:
        lines.append(slack_escape(_fixed_line(message)))
    if message.overdue:
        lines.append("*Overdue (SLA)*")
        lines.extend(f"• {slack_escape(w.overdue_line(o))}" for o in message.overdue)
    if message.problems:
        lines.append("*Scan problems*")
        lines.extend(f"• {slack_escape(w.problem_line(p))}" for p in message.problems)
    if message.heartbeat:
        lines.append(slack_escape(w.heartbeat_line(message)))
    lines.extend(f"_{slack_escape(w.one_line(n, w.MAX_DETAIL))}_" for n in message.notices)
    page = w.details_link(message)
    hint = (_slack_link(page, "scanwatch findings") if page
            else f"`{slack_escape(w.findings_hint(message)).replace('`', chr(39))}`")
    footer = f"More: {hint}"
    budget = SLACK_MAX_CHARS - len(footer) - 80
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > budget:
            footer = f"… {len(lines) - len(kept)} more lines cut. All of it: {hint}"
            break
        kept.append(line)
        used += len(line) + 1
    body = "\n".join([*kept, footer])
    return Rendered("slack", w.subject(message), body, "markdown")


# -- email ------------------------------------------------------------------------------------

SEVERITY_COLOURS = {Severity.CRITICAL: "#b91c1c", Severity.HIGH: "#c2410c",
                    Severity.MEDIUM: "#a16207", Severity.LOW: "#15803d"}
GREY = "#6b7280"


def _colour(level: Severity) -> str:
    return SEVERITY_COLOURS.get(level, GREY)


@lru_cache(maxsize=1)
def _templates() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("daemon.alerts", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True)


def _email_action(message: Message, a: Action) -> dict[str, Any]:
    vulns = []
    for v in a.vulnerabilities:
        why = a.why_of(v.id)
        vulns.append({"id": w.one_line(v.id), "severity": v.severity.label,
                      "cvss": w.cvss_words(v.cvss_v3),
                      "colour": _colour(v.severity), "why": why.words if why else "",
                      "link": links.advisory_link(v.id, message.advisory_url)})
    images = [{"names": ", ".join(w.image_names(i)), "link": i.link, "page": i.page}
              for i in a.images[: w.MAX_IMAGES]]
    more = len(a.images) - w.MAX_IMAGES
    return {"line": w.action_line(a), "counts": w.counts_text(a.severity_counts()),
            "top": a.top_severity.label, "colour": _colour(a.top_severity), "vulns": vulns,
            "images": images, "more": f" (and {more} more)" if more > 0 else "",
            "shared": w.shared_line(a) if a.shared_images else "",
            "source": lw.source_line(a) or "", "notes": w.notes(a)}


def _email_summary(message: Message) -> list[dict[str, Any]]:
    fix = dict(message.severity_counts("fix_now"))
    no_fix = dict(message.severity_counts("no_fix"))
    return [{"label": level.label, "colour": _colour(level), "fix": fix.get(level, 0),
             "no_fix": no_fix.get(level, 0)} for level, _ in message.severity_counts()]


def _email_changes(message: Message) -> list[tuple[str, int]]:
    """How many vulnerabilities each reason brought, in the order they first appear."""
    counts: dict[str, int] = {}
    for a in (*message.fix_now, *message.no_fix):
        for why in a.why:
            counts[why.words] = counts.get(why.words, 0) + 1
    return list(counts.items())


def render_email(message: Message) -> Rendered:
    """HTML from ``templates/email.html.j2`` (autoescaped, inline styles): a summary table of
    severities with and without a fix, why each item is there, severity colour, every id
    linked to its advisory; the subject is ``subject(message)``."""
    f = message.fixed
    first = [{"name": w.one_line(x.name), "link": x.link,
              "rest": w.first_seen_what(x)[len(w.one_line(x.name)):],
              "command": w.first_seen_command(message.registry, x)}
             for x in message.first_seen[: w.MAX_IMAGES]]
    view = {
        "subject": w.subject(message), "headline": w.headline(message),
        "summary": _email_summary(message), "changes": _email_changes(message),
        "rebuilds": [{"line": lw.rebuild_line(r, message.created_at),
                      "images": lw.rebuild_images(r)} for r in message.rebuilds],
        "fix_now": [_email_action(message, a) for a in message.fix_now],
        "no_fix": [_email_action(message, a) for a in message.no_fix],
        "first_seen_title": w.FIRST_SEEN_TITLE, "first_seen": first,
        "first_seen_more": [line[2:] for line in _first_seen_more(message, w.MAX_IMAGES)],
        "fixed": None if f is None else {
            "line": _fixed_line(message),
            "ids": [{"id": w.one_line(v), "link": links.advisory_link(v, message.advisory_url)}
                    for v in f.vulnerabilities]},
        "lists": [("Overdue (SLA)", [w.overdue_line(o) for o in message.overdue]),
                  ("Scan problems", [w.problem_line(p) for p in message.problems]),
                  ("Notices", [w.one_line(n, w.MAX_DETAIL) for n in message.notices])],
        "heartbeat": w.heartbeat_line(message) if message.heartbeat else "",
        "details_link": w.details_link(message), "details_command": w.findings_hint(message),
    }
    body = _templates().get_template("email.html.j2").render(view)
    return Rendered("email", w.subject(message), body, "html")


# -- JSON -------------------------------------------------------------------------------------


def _image_doc(i: Image) -> dict[str, Any]:
    return {"project": w.one_line(i.project), "repository": w.one_line(i.repository),
            "tags": [w.one_line(t) for t in i.tags], "digests": [w.one_line(d) for d in i.digests],
            "link": i.link or None, "page": i.page or None}


def _kev_doc(e: ExploitInfo) -> dict[str, Any] | None:
    doc = e.kev_fields()
    if doc is not None:
        doc.update(name=w.one_line(e.kev_name), required_action=w.one_line(e.required_action))
    return doc


def _vuln_doc(message: Message, a: Action, v: Vuln) -> dict[str, Any]:
    why = a.why_of(v.id)
    e = a.exploit_of(v.id)
    return {"id": w.one_line(v.id), "severity": v.severity.label,
            "cvss_v3": v.cvss_v3, "cvss_vector": w.one_line(v.cvss_vector) or None,
            "link": links.advisory_link(v.id, message.advisory_url) or None,
            "fix_version": w.one_line(v.fix_version) or None,
            "change": why.change if why else None, "reason": why.reason if why else None,
            "kev": _kev_doc(e), "epss": e.epss, "epss_percentile": e.epss_percentile,
            "vex": w.one_line(a.vex_of(v.id), w.MAX_DETAIL) or None}


def _action_doc(message: Message, a: Action) -> dict[str, Any]:
    return {
        "package": w.one_line(a.package),
        "installed_version": w.one_line(a.installed_version),
        "fix_version": w.one_line(a.fix_version) or None,
        "kev": a.kev,
        "epss": a.epss,
        "epss_percentile": a.epss_percentile,
        "candidate_fix_versions": [w.one_line(v) for v in a.candidate_fixes],
        "vulnerabilities": [_vuln_doc(message, a, v) for v in a.vulnerabilities],
        "images": [_image_doc(i) for i in a.images],
        "shared_images": a.shared_images,
        "reminder": a.reminder,
        "source": a.source or None,
        "base_image": w.one_line(a.base_image) or None,
        "rebuild_on": w.one_line(a.rebuild_on) or None,
        "build_step": w.one_line(a.step) or None,
    }


def _first_seen_doc(registry: str, f: FirstSeen) -> dict[str, Any]:
    return {"registry": w.one_line(registry), "project": w.one_line(f.project),
            "repository": w.one_line(f.repository), "findings": f.findings,
            "highest_severity": f.highest.label,
            "severity_counts": {s.label: n for s, n in f.severity_counts},
            "link": f.link or None, "details_command": w.first_seen_command(registry, f)}


def to_document(message: Message) -> dict[str, Any]:
    """The ``scanwatch.alert/v2`` JSON document (its schema is documented in README)."""
    actions = [*message.fix_now, *message.no_fix]
    f = message.fixed
    hb = message.heartbeat
    return {
        "schema": SCHEMA,
        "id": message.id,
        "kind": message.kind,
        "registry": w.one_line(message.registry),
        "context": w.one_line(message.context),
        "receiver": message.receiver,
        "routes": list(message.routes),
        "created_at": message.created_at.isoformat(),
        "subject": w.subject(message),
        "severity_counts": {s.label: n for s, n in message.severity_counts()},
        "severity_counts_without_fix": {s.label: n for s, n in
                                        message.severity_counts("no_fix")},
        "rebuilds": [{"rebuild_on": w.one_line(r.rebuild_on),
                      "base_image": w.one_line(r.base_image),
                      "pushed_at": r.pushed_at.isoformat() if r.pushed_at else None,
                      "images": [_image_doc(i) for i in r.images],
                      "vulnerabilities": [w.one_line(v.id) for v in r.vulnerabilities],
                      "severity_counts": {s.label: n for s, n in r.severity_counts()}}
                     for r in message.rebuilds],
        "fix_now": [_action_doc(message, a) for a in message.fix_now[:MAX_JSON_ACTIONS]],
        "no_fix": [_action_doc(message, a) for a in message.no_fix[:MAX_JSON_ACTIONS]],
        "truncated": len(actions) > len(message.fix_now[:MAX_JSON_ACTIONS])
        + len(message.no_fix[:MAX_JSON_ACTIONS]),
        "fixed": None if f is None else {
            "findings": f.findings, "images": [w.one_line(i) for i in f.images],
            "reasons": dict(f.reasons), "vulnerabilities": [w.one_line(v) for v in
                                                            f.vulnerabilities]},
        "overdue": [{"vulnerability": w.one_line(o.vulnerability),
                     "package": w.one_line(o.package), "severity": o.severity.label,
                     "image": _image_doc(o.image), "open_days": o.open_days,
                     "deadline_days": o.deadline_days, "escalation": o.escalation,
                     "kev_due_date": o.kev_due.isoformat() if o.kev_due else None}
                    for o in message.overdue],
        "scan_problems": [{"kind": p.kind, "image": _image_doc(p.image) if p.image else None,
                           "detail": w.one_line(p.detail, w.MAX_DETAIL)}
                          for p in message.problems],
        "notices": [w.one_line(n, w.MAX_DETAIL) for n in message.notices],
        "first_seen": [_first_seen_doc(message.registry, f)
                       for f in message.first_seen[:MAX_JSON_ACTIONS]],
        "heartbeat": None if hb is None else {
            "images_checked": hb.images_checked,
            "scanner_db_updated_at": hb.scanner_db_updated_at.isoformat()
            if hb.scanner_db_updated_at else None,
            "behind_db": hb.behind_db, "images": hb.images if hb.behind_db is not None else None,
            "oldest_behind": hb.oldest_behind.isoformat() if hb.oldest_behind else None},
        "details_command": w.findings_hint(message),
        "details_link": w.details_link(message) or None,
    }


def render(message: Message, fmt: str) -> Rendered:
    """The message in one channel's form: ``text``, ``slack``, ``email`` or ``json``."""
    if fmt == "slack":
        return render_slack(message)
    if fmt == "email":
        return render_email(message)
    if fmt == "json":
        body = json.dumps(to_document(message), ensure_ascii=False, sort_keys=True)
        return Rendered("json", w.subject(message), body, "text")
    return render_text(message)


def format_for_url(url: str, configured: str = "") -> str:
    """The form a receiver URL gets: its configured ``format``, else from the URL's scheme."""
    if configured:
        return configured
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("slack", "slacks"):
        return "slack"
    if scheme in ("mailto", "mailtos", "email"):
        return "email"
    if scheme in ("json", "jsons"):
        return "json"
    return "text"
