"""`scanwatch status [TARGET…]`: each artifact's scan status, live from Harbor."""

from __future__ import annotations

import argparse
from typing import Any

from daemon.commands._common import absent_as_null, add_format, print_json, print_table
from daemon.commands._harbor import group_targets, load_config, status_of

HELP = "show each artifact's scan status, live from Harbor, as Harbor's UI names it"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "status", parents=[common], help=HELP, description=HELP + ".",
        epilog="TARGET is registry[/project[/repository[:tag|@digest]]]; any part may be a glob "
               "('prod/payments/*'). Without TARGET: every configured registry. Statuses: Not "
               "Scanned, Not Supported, Queued, Scanning (percent), Error (see `scanwatch "
               "scan-log`), Complete (counts per severity), Unreadable (Harbor's report is "
               "complete but scanwatch set it aside: unreadable or not storable, with why).")
    p.add_argument("targets", nargs="*", metavar="TARGET", help="what to show (default: all)")
    add_format(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    cfg = load_config(args, sends=False)
    texts = list(args.targets) or [r.name for r in cfg.registries]
    grouped = group_targets(cfg, texts, partial=True)
    rows = asyncio.run(_collect(cfg, grouped, _set_aside_marks(cfg, list(grouped))))
    if args.format == "json":
        print_json([absent_as_null(r) for r in rows])
    else:
        print_table(("ARTIFACT", "STATUS", "DETAIL"),
                    [(r["artifact"], r["status"], r["detail"]) for r in rows])
    return 0


def _set_aside_marks(cfg: Any, registries: list[str]) -> dict[Any, Any]:
    """The reports the history database set aside (unreadable, or not storable), by artifact;
    empty where nothing has been recorded yet (status itself reads Harbor, not history)."""
    from daemon import config
    from daemon.store import setaside
    from daemon.store.base import sqlite_path
    from daemon.store.db import open_store

    url = cfg.daemon.database or config.default_database()
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return {}
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            marks: dict[Any, Any] = {}
            for name in registries:
                marks.update(setaside.of_registry(conn, name))
            return marks
    finally:
        store.close()


def _with_set_aside(row: dict[str, Any], mark: Any) -> dict[str, Any]:
    """A Complete row whose report scanwatch set aside: Unreadable, with the reason; Harbor's
    own status and counts stay in the JSON form."""
    at = mark.at.strftime("%Y-%m-%d %H:%M UTC")
    return {**row, "status": "Unreadable", "harbor_status": row["status"],
            "set_aside": {"reason": mark.reason, "at": mark.at.isoformat()},
            "detail": f"report set aside {at}: {mark.reason}"}


async def _collect(cfg: Any, grouped: dict[str, list[Any]],
                   set_aside: dict[Any, Any]) -> list[dict[str, Any]]:
    from daemon.harbor.client import HarborClient
    from daemon.harbor.targets import resolve

    rows: list[dict[str, Any]] = []
    for name, targets in grouped.items():
        registry = cfg.registry(name)
        async with HarborClient(registry) as client:
            system = await client.system_info()
            seen: set[str] = set()
            db_cache: dict[str, Any] = {}
            for target in targets:
                for artifact in await resolve(client, target, system):
                    key = f"{artifact.ref.project}/{artifact.ref.repository}@{artifact.ref.digest}"
                    if key in seen:
                        continue
                    seen.add(key)
                    db_time = await _db_time(client, artifact.ref.project, db_cache)
                    row = status_of(artifact, db_time)
                    mark = set_aside.get(artifact.ref)
                    if (mark is not None and row["status"] == "Complete" and artifact.overview
                            and artifact.overview.report_id == mark.report_id):
                        row = _with_set_aside(row, mark)
                    rows.append({"registry": name, **row,
                                 "_repo": (artifact.ref.project, artifact.ref.repository)})
    # One repository's artifacts together (Harbor lists a project's newest first, across its
    # repositories); within a repository, Harbor's order (newest first) stays.
    rows.sort(key=lambda r: (r["registry"], r["_repo"]))
    for row in rows:
        del row["_repo"]
    return rows


async def _db_time(client: Any, project: str, cache: dict[str, Any]) -> Any:
    """The project's scanner DB date, read once per project and once per scanner."""
    from daemon.errors import HarborError

    if project not in cache:
        try:
            scanner = await client.project_scanner(project)
        except HarborError:
            scanner = None
        uuid = scanner.uuid if scanner is not None else ""
        if uuid and f"scanner:{uuid}" not in cache:
            cache[f"scanner:{uuid}"] = await client.scanner_db_updated_at(uuid)
        cache[project] = cache.get(f"scanner:{uuid}") if uuid else None
    return cache[project]
