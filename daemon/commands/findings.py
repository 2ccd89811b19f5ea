"""`scanwatch findings`: open findings, the fix first (package, installed → fixed, where, SLA)."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from typing import Any

from daemon.commands._common import add_format, print_json, print_table, table_width
from daemon.commands._store import add_database, load_config, open_for_reading
from daemon.errors import UsageError

HELP = "list open findings, fixable first: package, installed → fixed version, tags, age, SLA"
SEVERITIES = ("Critical", "High", "Medium", "Low", "Unknown", "None")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("findings", parents=[common], help=HELP, description=HELP + ".")
    p.add_argument("--registry", help="only this registry (its name in the config)")
    p.add_argument("--project", help="only this project")
    p.add_argument("--repository", help="only this repository (without the project)")
    p.add_argument("--severity", metavar="LEVEL", type=str.capitalize,
                   choices=SEVERITIES, help="this severity and above: " + ", ".join(SEVERITIES))
    p.add_argument("--fixable", action="store_true", help="only findings with a fix version")
    p.add_argument("--overdue", action="store_true", help="only findings past their [sla] deadline")
    p.add_argument("--include-ignored", action="store_true",
                   help="also findings hidden by [[ignore]] rules or Harbor allowlists")
    p.add_argument("--wide", action="store_true", help="every column in full, whatever the "
                   "terminal's width (a pipe always gets them in full)")
    add_format(p, "csv")
    add_database(p)
    p.set_defaults(handler=run)


def _age(days: int) -> str:
    return f"{days}d"


def run(args: argparse.Namespace) -> int:
    from daemon.model import Severity

    cfg = load_config(args)
    now = datetime.now(UTC)
    sla_for = _sla_function(cfg)
    if args.overdue and sla_for is None:
        raise UsageError("--overdue needs an [sla] section in the configuration")
    store = open_for_reading(args, cfg)
    try:
        rows = store.open_findings(
            registry=args.registry, project=args.project, repository=args.repository,
            min_severity=Severity.from_name(args.severity) if args.severity else None,
            fixable=True if args.fixable else None, include_ignored=args.include_ignored,
            rules=store.ignore_rules(cfg) if cfg is not None else None, now=now)
    finally:
        store.close()
    records: list[dict[str, Any]] = []
    for f in rows:
        deadline = sla_for(f.severity, f.opened_at) if sla_for else None
        overdue = deadline is not None and now > deadline
        if args.overdue and not overdue:
            continue
        if deadline is None:
            sla = "-"  # no [sla] deadline for this severity
        elif overdue:
            sla = f"overdue {(now - deadline).days}d"
        else:
            sla = f"due in {(deadline - now).days}d"
        records.append({
            "package": f.key.package, "installed": ", ".join(f.installed_versions),
            "fixed": f.fix_version, "vulnerability": f.key.vulnerability,
            "severity": f.severity.label, "registry": f.key.registry, "project": f.key.project,
            "repository": f.key.repository, "tags": list(f.tags), "digests": list(f.digests),
            "first_seen": f.first_seen.isoformat(), "opened_at": f.opened_at.isoformat(),
            "age_days": (now - f.opened_at).days, "sla": sla,
            "deadline": deadline.isoformat() if deadline else None,
            "ignored": f.ignored, "ignore_reason": f.ignore_reason,
        })
    if args.format == "json":
        print_json(records)
    elif args.format == "csv":
        fields = list(records[0]) if records else ["package", "installed", "fixed"]
        out = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        out.writeheader()
        for rec in records:
            out.writerow({**rec, "tags": " ".join(rec["tags"]),
                          "digests": " ".join(rec["digests"])})
    else:
        print_table(
            ("PACKAGE", "INSTALLED → FIXED", "VULNERABILITY", "SEVERITY", "REPOSITORY", "TAGS",
             "AGE", "SLA"),
            ((r["package"], f"{r['installed']} → {r['fixed'] or '(no fix yet)'}",
              r["vulnerability"], r["severity"] + (" (ignored)" if r["ignored"] else ""),
              f"{r['registry']}/{r['project']}/{r['repository']}",
              _tags(r["tags"]), _age(r["age_days"]), r["sla"]) for r in records),
            width=table_width(args.wide), total=_total(records), empty=_empty(args))
    return 0


def _total(records: list[dict[str, Any]]) -> str:
    fixable = sum(1 for r in records if r["fixed"])
    repos = len({(r["registry"], r["project"], r["repository"]) for r in records})
    return f"{len(records)} finding(s), {fixable} fixable, in {repos} repository(ies)"


def _empty(args: argparse.Namespace) -> str:
    given = [f"--{k} {v}" for k in ("registry", "project", "repository", "severity")
             if (v := getattr(args, k))]
    given += [f"--{k}" for k in ("fixable", "overdue") if getattr(args, k)]
    text = "no open findings" + (f" match {' '.join(given)}" if given else "")
    if args.repository:
        text += ("; --repository is the name inside its project, as in "
                 "--project payments --repository api")
    return text


def _tags(tags: list[str], limit: int = 3) -> str:
    shown = ", ".join(tags[:limit])
    return shown + (f" (+{len(tags) - limit})" if len(tags) > limit else "")


def _sla_function(cfg: Any) -> Any:
    """deadline(severity, opened_at) from daemon/sla.py and [sla]; None when there is no [sla]."""
    if cfg is None or not cfg.sla.deadlines:
        return None
    from daemon import sla

    return lambda severity, opened: sla.deadline_for(severity, opened, cfg.sla)
