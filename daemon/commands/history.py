"""`scanwatch history TARGET`: a repository's or a tag's scans over time, with what each changed."""

from __future__ import annotations

import argparse
from typing import Any

from daemon.commands._common import add_format, print_json, print_table, table_width
from daemon.commands._store import add_database, load_config, open_for_reading
from daemon.errors import UnknownTarget, UsageError

HELP = "show a repository's or tag's scans over time and the changes each brought, and why"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "history", parents=[common], help=HELP, description=HELP + ".",
        epilog="TARGET is registry/project/repository[:tag|@digest], e.g. "
               "prod-harbor/payments/api:1.4 (the repository may contain slashes).")
    p.add_argument("target", metavar="TARGET",
                   help="registry/project/repository[:tag|@digest]")
    add_format(p)
    add_database(p)
    p.set_defaults(handler=run)


def parse_history_target(text: str) -> tuple[str, str, str, str | None, str | None]:
    """(registry, project, repository, tag, digest): one repository, optionally one image."""
    from daemon.targets import is_glob, parse_target

    target = parse_target(text)
    if any(is_glob(p) for p in (target.registry, target.project, target.repository,
                                target.tag or "", target.digest or "")):
        raise UsageError(f"target {text!r}: history is about one repository (or one tag or "
                         "digest of it), not a glob; `scanwatch findings` lists many")
    return target.registry, target.project, target.repository, target.tag, target.digest


def _change_line(c: Any) -> str:
    if c.count > 1 or not c.finding.vulnerability:
        return f"{c.kind.value} ({c.reason.value}): {c.count} findings recorded at first sight"
    what = f"{c.finding.vulnerability} in {c.finding.package} {c.installed_version}".rstrip()
    extra = ""
    if c.previous_severity is not None and c.previous_severity != c.severity:
        extra = f" {c.previous_severity.label} → {c.severity.label}"
    if c.fix_version:
        extra += f" (fix {c.fix_version})"
    return f"{c.kind.value} ({c.reason.value}): {what} [{c.severity.label}]{extra}"


def run(args: argparse.Namespace) -> int:
    registry, project, repository, tag, digest = parse_history_target(args.target)
    cfg = load_config(args, sends=False)
    store = open_for_reading(args, cfg)
    try:
        entries = store.history(registry, project, repository, tag)
    finally:
        store.close()
    if digest is not None:
        entries = [e for e in entries if e.digest == digest]
        if not entries:
            raise UnknownTarget(f"unknown digest {registry}/{project}/{repository}@{digest}")
    if args.format == "json":
        print_json([{
            "at": e.at.isoformat(), "digest": e.digest, "tags": list(e.tags),
            "status": e.status, "report_id": e.report_id, "scanner": e.scanner,
            "scanner_db_updated_at": e.scanner_db_updated_at.isoformat()
            if e.scanner_db_updated_at else None,
            "confirmations": e.confirmations,
            "last_confirmed_at": e.last_confirmed_at.isoformat() if e.last_confirmed_at else None,
            "occurrences": e.occurrences, "error": e.error, "trigger": e.trigger,
            "changes": [{
                "kind": c.kind.value, "reason": c.reason.value,
                "vulnerability": c.finding.vulnerability, "package": c.finding.package,
                "severity": c.severity.label,
                "previous_severity": c.previous_severity.label if c.previous_severity else None,
                "installed_version": c.installed_version, "fix_version": c.fix_version,
                "digests": list(c.digests), "count": c.count,
            } for c in e.changes],
        } for e in entries])
        return 0
    rows = []
    for e in entries:
        seen = f"×{e.confirmations} until {e.last_confirmed_at:%Y-%m-%d %H:%M}" \
            if e.confirmations > 1 and e.last_confirmed_at else ""
        status = e.status or "change"
        if e.error and e.status != "Success":
            status = f"{e.status} ({e.error})"
        summary = f"{len(e.changes)} change(s)" if e.changes else ("no change" if e.status else "")
        rows.append((f"{e.at:%Y-%m-%d %H:%M}", e.digest[:19], ",".join(e.tags), status,
                     e.occurrences if e.status == "Success" else "", seen, summary))
        rows.extend(("", "", "", "", "", "", "  " + _change_line(c)) for c in e.changes)
    print_table(("WHEN", "DIGEST", "TAGS", "STATUS", "OCCURRENCES", "REPEATED", "CHANGES"), rows,
                width=table_width(), empty=f"no scans recorded for {args.target}")
    return 0
