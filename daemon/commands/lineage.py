"""`scanwatch lineage`: each scanned image's base image, as history has found it.

One row per image digest (each child of an image index, with its platform and the index's
tags): its repository and tags, its base (``base/debian:12.5``, "external
(debian:12 per annotation)", "unknown (no pull access to base)" or "unknown"), how it was found
(``annotation``, ``layers``, ``history``, ``denied``) and, where a newer scanned tag of that
base lacks findings the base carries, the tag to rebuild on and how many of the base's
vulnerabilities that fixes.
"""

from __future__ import annotations

import argparse
from typing import Any

from daemon.commands._common import add_format, print_json, print_table, table_width
from daemon.commands._store import add_database, load_config, open_for_reading

HELP = "show each scanned image's base image and the newer base to rebuild on"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("lineage", parents=[common], help=HELP, description=HELP + ": "
                              "found from the OCI base annotations, else the longest image of "
                              "the registry whose layers start the image's, else its build "
                              "history (read once per digest by `scanwatch run`).")
    p.add_argument("--registry", help="only this registry (default: every configured one)")
    p.add_argument("--repository", metavar="PROJECT/REPO", help="only this repository")
    add_format(p)
    add_database(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from daemon.lineage.fetch import advisor

    cfg = load_config(args, sends=False)
    names = [args.registry] if args.registry else [r.name for r in cfg.registries] if cfg \
        else []
    rows: list[dict[str, Any]] = []
    with open_for_reading(args, cfg) as store:
        for name in names:
            advice = advisor(store, name)
            for image in sorted(advice.images.values(),
                                key=lambda i: (i.name, i.tags, i.platform)):
                if not image.listed or (args.repository and image.name != args.repository):
                    continue
                found = advice.lineage(image.digest)
                rebuild = advice.rebuild(found.base_digest) if found and found.base_digest \
                    else None
                rows.append({"registry": name, "repository": image.name,
                             "tags": list(image.tags), "digest": image.digest,
                             "platform": image.platform or None,
                             "index": image.index or None,
                             "base": found.base if found else "unknown",
                             "base_digest": (found.base_digest or None) if found else None,
                             "method": found.method if found else "unknown",
                             "rebuild_on": rebuild[0].label if rebuild else None,
                             "rebuild_fixes": len(rebuild[1]) if rebuild else 0})
    if args.format == "json":
        print_json(rows)
        return 0
    print_table(("IMAGE", "BASE", "FOUND BY", "REBUILD ON"),
                ((_shown(r), r["base"], r["method"],
                  f"{r['rebuild_on']} (fixes {r['rebuild_fixes']})" if r["rebuild_on"] else "")
                 for r in rows), width=table_width(),
                empty="no image lineage recorded yet: `scanwatch run --once` reads it",
                total=f"{len(rows)} image(s)" if rows else "")
    return 0


def _shown(row: dict[str, Any]) -> str:
    name = (f"{row['repository']}:{','.join(row['tags'])}" if row["tags"]
            else f"{row['repository']}@{row['digest'][:19]}")
    return f"{name} ({row['platform']})" if row["platform"] else name
