"""The working state of one ``record_scans`` batch, and the small values the history rules use.

``Batch`` holds what the batch has loaded (artifacts, content ids, each repository's findings)
and what it still has to write (confirmations, artifact updates). Every write the batch makes
either goes through at once or is flushed before anything reads what it changes, so a result
sees the effects of the results before it exactly as separate ``record_scan`` calls would.
The rules themselves are in ``daemon/diff.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Row

from daemon.diff import Repository, StoredFinding
from daemon.model import Occurrence
from daemon.store import statements as q
from daemon.store.base import Caches

Key = tuple[str, str]
CHUNK = 500


@dataclass(frozen=True)
class Target:
    registry: str
    project: str
    repository: str
    repository_id: int

    @property
    def repo(self) -> Repository:
        return Repository(self.registry, self.project, self.repository)


class Art:
    """An artifact row as the batch knows it; updated in step with every write to it."""

    __slots__ = ("id", "repository_id", "first_seen", "removed_at", "content_id", "counting",
                 "last_scan_id", "last_success_scan_id", "consecutive_failures",
                 "repo_first_seen", "last_status", "last_hash", "last_excerpt")

    id: int
    repository_id: int
    first_seen: datetime
    removed_at: datetime | None
    content_id: int | None
    counting: bool
    last_scan_id: int | None
    last_success_scan_id: int | None
    consecutive_failures: int
    repo_first_seen: datetime
    last_status: str | None
    last_hash: str
    last_excerpt: str

    def __init__(self, row: Row[Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(row, name))
        self.last_hash = self.last_hash or ""
        self.last_excerpt = self.last_excerpt or ""


@dataclass
class Findings:
    """One repository's finding rows by key, and the keys of the open ones.

    After an insert, ``open`` is kept exact (the new keys are open) but ``rows`` lacks the new
    rows until they are needed (``stale``): the other images of a repository usually carry
    only findings that are already open, and need no row at all.
    """

    rows: dict[Key, StoredFinding]
    open: set[Key]
    stale: bool = False


@dataclass
class Batch:
    """What one ``record_scans`` transaction has loaded and still has to write."""

    conn: Connection
    caches: Caches
    now: datetime
    arts: dict[tuple[str, str, str, str], Art] = field(default_factory=dict)
    by_id: dict[int, Art] = field(default_factory=dict)
    checked: set[int] = field(default_factory=set)  # asked whether they have predecessors
    with_predecessors: set[int] = field(default_factory=set)
    content_ids: dict[str, int] = field(default_factory=dict)
    findings: dict[int, Findings] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)
    confirms: list[dict[str, Any]] = field(default_factory=list)
    scanned: list[dict[str, Any]] = field(default_factory=list)  # artifact updates to write
    kev: tuple[frozenset[str], str] | None = None  # KEV in force (CVEs, version), when asked

    def flush(self) -> None:
        """Write the pending artifact updates (before anything reads or changes artifacts)."""
        if self.scanned:
            self.conn.execute(q.ARTIFACT_SCANNED, self.scanned)
            self.scanned = []


@dataclass(frozen=True)
class Plan:
    """The baseline a successful scan of a counting artifact is compared with."""

    baseline: tuple[Occurrence, ...] | None
    same: bool
    predecessors: list[Row[Any]]
    scan_id: int | None


def insert(conn: Connection, statement: Any, values: dict[str, Any]) -> int:
    """Insert one row; its new id."""
    key = conn.execute(statement, values).inserted_primary_key
    assert key is not None
    return int(key[0])


def chunks(items: Sequence[Any], size: int = CHUNK) -> list[list[Any]]:
    items = list(items)
    return [items[i:i + size] for i in range(0, len(items), size)]
