"""`scanwatch ignore add|list|remove`: ignore rules kept in the database, beside the config's.

A rule added here has the fields of an ``[[ignore]]`` table (globs: a vulnerability id, a
package, registries, projects, repositories), a reason, an expiry day (through that whole day,
UTC) and who added it and when. It applies at once: the open findings it covers are marked
ignored before the command returns, so `findings`, `history` and alerts see it; `remove` brings
them back the same way. `config check` counts these rules beside the configuration's own.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from daemon.commands._common import add_format, print_json, print_table, table_width
from daemon.commands._store import add_database, load_config, open_for_reading
from daemon.errors import UsageError

if TYPE_CHECKING:
    from daemon.store.db import Store

HELP = "ignore findings from the command line (kept in the database, with who and why)"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    group = subparsers.add_parser("ignore", parents=[common], help=HELP, description=HELP + ".")
    group.set_defaults(group_parser=group)
    sub = group.add_subparsers(title="subcommands", metavar="SUBCOMMAND")
    add = sub.add_parser(
        "add", parents=[common], help="add an ignore rule",
        description="Ignore the findings a rule covers until it expires. VULN and --package are "
                    "globs (CVE-2024-*); --repository matches project/repository or the "
                    "repository alone. The rule applies at once to findings, history and "
                    "alerts.",
        epilog="Example: scanwatch ignore add CVE-2023-5363 --repository payments/api "
               "--reason 'not reachable: no TLS in this service' --expires 30d")
    add.add_argument("vulnerability", nargs="?", default="", metavar="VULN",
                     help="vulnerability id or glob (default: any, with --package)")
    add.add_argument("--package", default="", metavar="P", help="package name or glob")
    add.add_argument("--registry", action="append", metavar="R", help="registry name or glob")
    add.add_argument("--project", action="append", metavar="P", help="project name or glob")
    add.add_argument("--repository", action="append", metavar="G",
                     help="project/repository or repository glob (repeatable)")
    add.add_argument("--reason", required=True, help="why (shown by findings and history)")
    add.add_argument("--expires", required=True, metavar="WHEN",
                     help="last day it holds: a date (2026-12-31) or a duration (30d, 8w)")
    add.add_argument("--by", metavar="NAME",
                     help="who adds it (default: $SUDO_USER, else the login name)")
    add_format(add)
    add_database(add)
    add.set_defaults(handler=run_add)
    listing = sub.add_parser("list", parents=[common], help="list the rules added here",
                             description="The ignore rules added with `scanwatch ignore "
                                         "add`, oldest first, expired ones marked.")
    add_format(listing)
    add_database(listing)
    listing.set_defaults(handler=run_list)
    remove = sub.add_parser("remove", parents=[common], help="remove a rule (by its id)",
                            description="Remove an ignore rule added with `ignore add`; "
                                        "its findings count again at once.")
    remove.add_argument("id", type=int, metavar="ID", help="the rule's id (see `ignore list`)")
    add_database(remove)
    remove.set_defaults(handler=run_remove)


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_expires(text: str, today: date) -> date:
    """A day (ISO) or ``Nd``/``Nw`` from today; never before today."""
    m = re.fullmatch(r"\s*(\d{1,4})\s*([dw])\s*", text)
    if m:
        days = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
        return today + timedelta(days=days)
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--expires {text!r}: expected a date like 2026-12-31 or a duration "
                         "like 30d or 8w") from None
    if day < today:
        raise UsageError(f"--expires {day.isoformat()} is in the past (today is "
                         f"{today.isoformat()}, UTC)")
    return day


def who(args: argparse.Namespace) -> str:
    import getpass
    import os

    name = args.by or os.environ.get("SUDO_USER") or ""
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
    return name


def _json(added: Any, today: date) -> dict[str, Any]:
    rule = added.rule
    return {"id": added.id, "vulnerability": rule.vulnerability or None,
            "package": rule.package or None, "registries": list(rule.registries),
            "projects": list(rule.projects), "repositories": list(rule.repositories),
            "reason": rule.reason, "expires": rule.expires.isoformat(),
            "expired": rule.expires < today, "created_by": added.created_by,
            "created_at": added.created_at.isoformat()}


def _scope(rule: Any) -> str:
    parts = [f"{name} {','.join(globs)}" for name, globs in (
        ("registry", rule.registries), ("project", rule.projects),
        ("repository", rule.repositories)) if globs != ("*",)]
    return "; ".join(parts) or "everywhere"


def _open(args: argparse.Namespace, cfg: Any, *, create: bool) -> Any:
    if not create:
        return open_for_reading(args, cfg)
    from daemon import config
    from daemon.store.db import open_store

    url = getattr(args, "database", None) or (cfg.daemon.database if cfg else "")
    return open_store(url or config.default_database())


def _apply(store: Store, cfg: Any) -> None:
    """Bring the open findings' ignored marks in line with every rule now."""
    if cfg is not None:
        store.reconcile_ignores(store.ignore_rules(cfg), utcnow())


def run_add(args: argparse.Namespace) -> int:
    from daemon.config_types import IgnoreConfig

    if not args.vulnerability and not args.package:
        raise UsageError("ignore add: give a vulnerability (VULN) or --package, or both")
    if not args.reason.strip():
        raise UsageError("ignore add: --reason must say why")
    now = utcnow()
    rule = IgnoreConfig(
        reason=args.reason.strip(), expires=parse_expires(args.expires, now.date()),
        vulnerability=args.vulnerability.strip(), package=args.package.strip(),
        registries=tuple(args.registry or ("*",)), projects=tuple(args.project or ("*",)),
        repositories=tuple(args.repository or ("*",)))
    cfg = load_config(args, sends=False)
    with _open(args, cfg, create=True) as store:
        added = store.add_ignore(rule, who(args), now)
        _apply(store, cfg)
    if args.format == "json":
        print_json(_json(added, now.date()))
    else:
        what = " ".join(x for x in (rule.vulnerability, rule.package and f"package "
                                    f"{rule.package}") if x)
        print(f"ignore #{added.id} added: {what} ({_scope(rule)}) until "
              f"{rule.expires.isoformat()}, by {added.created_by}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    today = utcnow().date()
    cfg = load_config(args, sends=False)
    with open_for_reading(args, cfg) as store:
        rules = store.list_ignores()
    if args.format == "json":
        print_json([_json(r, today) for r in rules])
        return 0
    print_table(
        ("ID", "VULNERABILITY", "PACKAGE", "WHERE", "EXPIRES", "BY", "ADDED", "REASON"),
        [(r.id, r.rule.vulnerability or "*", r.rule.package or "*", _scope(r.rule),
          r.rule.expires.isoformat() + (" (expired)" if r.rule.expires < today else ""),
          r.created_by, r.created_at.date().isoformat(), r.rule.reason) for r in rules],
        width=table_width(), total=f"{len(rules)} rule(s)",
        empty="no ignore rules added with `scanwatch ignore add` (the config's [[ignore]] "
              "rules are counted by `scanwatch config check`)")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    cfg = load_config(args, sends=False)
    with open_for_reading(args, cfg) as store:
        if not store.remove_ignore(args.id):
            raise UsageError(f"no ignore rule with id {args.id} (see `scanwatch ignore list`)")
        _apply(store, cfg)
    print(f"ignore #{args.id} removed")
    return 0
