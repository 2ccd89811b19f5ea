"""`scanwatch cluster status`: the instances sharing a PostgreSQL database and their leases."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from daemon.commands._common import add_format, print_json, print_table, table_width
from daemon.commands._store import add_database, load_config, open_for_reading
from daemon.errors import UsageError

HELP = ("show the instances sharing the database (host, pid, version, last seen) and who holds "
        "each unit of work: holder, epoch, expiry")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("cluster", parents=[common], help=HELP, description=HELP + ".",
                              epilog="Several instances share work only on PostgreSQL; on "
                                     "SQLite one daemon runs and this lists nothing.")
    p.add_argument("action", nargs="?", choices=("status",), default="status",
                   help="status (the default)")
    add_format(p)
    add_database(p)
    p.set_defaults(handler=run)


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (now - moment).total_seconds()
    return f"{seconds:.0f}s ago" if seconds >= 0 else f"in {-seconds:.0f}s"


def run(args: argparse.Namespace) -> int:
    from daemon.store import leases

    cfg = load_config(args, sends=False)
    store = open_for_reading(args, cfg)
    try:
        if store.engine.dialect.name != "postgresql":
            raise UsageError("cluster status: the database is SQLite, where one daemon runs "
                             "alone; several instances share a PostgreSQL database")
        with store.engine.connect() as conn:
            now = leases.db_now(conn)
            members = leases.instances(conn)
            units = leases.leases(conn)
    finally:
        store.close()
    ttl = cfg.daemon.lease_ttl if cfg is not None else None
    live = {m.id for m in members if ttl is None or (now - m.last_seen) < ttl}
    if args.format == "json":
        print_json({
            "instances": [{"id": m.id, "host": m.host, "pid": m.pid, "version": m.version,
                           "started_at": m.started_at.isoformat(),
                           "last_seen": m.last_seen.isoformat(), "live": m.id in live}
                          for m in members],
            "leases": [{"unit": u.unit, "holder": _holder(u, now), "epoch": u.epoch,
                        "expires_at": u.expires_at.isoformat() if u.expires_at else None}
                       for u in units]})
        return 0
    width = table_width()
    print_table(("INSTANCE", "HOST", "PID", "VERSION", "LAST SEEN", "STATE"),
                ((m.id, m.host, m.pid, m.version, _ago(m.last_seen, now),
                  "live" if m.id in live else "silent") for m in members),
                width=width, empty="no instance has registered (no daemon on this database)")
    print()
    print_table(("UNIT", "HOLDER", "EPOCH", "EXPIRES"),
                ((u.unit, _holder(u, now) or "(free)", u.epoch, _ago(u.expires_at, now))
                 for u in units), width=width, empty="no leases yet")
    return 0


def _holder(lease: Any, now: datetime) -> str | None:
    expired = lease.expires_at is None or lease.expires_at.astimezone(UTC) <= now
    return None if lease.holder is None or expired else str(lease.holder)
