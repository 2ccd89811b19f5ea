"""Opening the history database for a read command: ``--database URL`` or the config's.

Standard library only at module level; the store is imported when a handler runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.commands._common import config_path

if TYPE_CHECKING:
    from daemon.config_types import Config
    from daemon.store.db import Store


def add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database", metavar="URL",
        help="history database as an SQLAlchemy URL (default: [daemon] database of the config)",
    )


def load_config(args: argparse.Namespace, *, sends: bool = True) -> Config | None:
    """The configuration when it can be read (lenient); None with ``--database`` and no file.

    A command that sends nothing (``sends=False``) does not have apprise check the receivers'
    URL schemes: ``config check``, ``run`` and the daemon do."""
    from daemon import config

    path = config_path(args)
    if getattr(args, "database", None) and not path.exists():
        return None
    return config.load(path, strict=False, receiver_schemes=sends)


def _url(args: argparse.Namespace, cfg: Config | None) -> str:
    from daemon import config

    url = getattr(args, "database", None) or (cfg.daemon.database if cfg else "")
    return url or config.default_database()


def missing_database(args: argparse.Namespace, cfg: Config | None) -> Path | None:
    """The SQLite file the command would read, where it does not exist yet (no run so far)."""
    from daemon.store.base import sqlite_path

    path = sqlite_path(_url(args, cfg))
    return path if path is not None and not path.exists() else None


def open_for_reading(args: argparse.Namespace, cfg: Config | None) -> Store:
    from daemon.errors import StoreError
    from daemon.store.db import open_store

    path = missing_database(args, cfg)
    if path is not None:
        raise StoreError(f"no history database at {path} (nothing has been recorded yet)")
    return open_store(_url(args, cfg))
