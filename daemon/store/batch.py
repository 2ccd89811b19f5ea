"""The working state of one ``record_scans`` batch, and the small values the history rules use.

``_Batch`` holds what the batch has loaded (artifacts, content ids, each repository's findings)
and what it still has to write (confirmations, artifact updates). Every write the batch makes
either goes through at once or is flushed before anything reads what it changes, so a result
sees the effects of the results before it exactly as separate ``record_scan`` calls would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Row

from daemon import versions
from daemon.model import ChangeKind, Occurrence, Reason, Severity
from daemon.store import statements as q

Key = tuple[str, str]
_CHUNK = 500


@dataclass
class _Pending:
    """An event to store once its finding has an id."""

    kind: ChangeKind
    reason: Reason
    key: Key
    severity: Severity
    installed: str = ""
    fix: str = ""
    previous_severity: Severity | None = None
    previous_version: str = ""
    digests: tuple[str, ...] = ()
    count: int = 1
    ignored: bool = False


@dataclass(frozen=True)
class _Target:
    registry: str
    project: str
    repository: str
    repository_id: int


class _Art:
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
class _Findings:
    """One repository's finding rows by key, and the keys of the open ones.

    After an insert, ``open`` is kept exact (the new keys are open) but ``rows`` lacks the new
    rows until they are needed (``stale``): the other images of a repository usually carry
    only findings that are already open, and need no row at all.
    """

    rows: dict[Key, Row[Any]]
    open: set[Key]
    stale: bool = False


@dataclass
class _Batch:
    """What one ``record_scans`` transaction has loaded and still has to write."""

    conn: Connection
    now: datetime
    arts: dict[tuple[str, str, str, str], _Art] = field(default_factory=dict)
    by_id: dict[int, _Art] = field(default_factory=dict)
    checked: set[int] = field(default_factory=set)  # asked whether they have predecessors
    with_predecessors: set[int] = field(default_factory=set)
    content_ids: dict[str, int] = field(default_factory=dict)
    findings: dict[int, _Findings] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)
    confirms: list[dict[str, Any]] = field(default_factory=list)
    scanned: list[dict[str, Any]] = field(default_factory=list)  # artifact updates to write

    def flush(self) -> None:
        """Write the pending artifact updates (before anything reads or changes artifacts)."""
        if self.scanned:
            self.conn.execute(q.ARTIFACT_SCANNED, self.scanned)
            self.scanned = []


@dataclass(frozen=True)
class _Plan:
    """The baseline a successful scan of a counting artifact is compared with."""

    baseline: tuple[Occurrence, ...] | None
    same: bool
    predecessors: list[Row[Any]]
    scan_id: int | None


def _group(occurrences: Iterable[Occurrence]) -> dict[Key, list[Occurrence]]:
    out: dict[Key, list[Occurrence]] = {}
    for occ in occurrences:
        key = (occ.id, occ.package)
        found = out.get(key)
        if found is None:
            out[key] = [occ]
        else:
            found.append(occ)
    return out


def _summary(occs: list[Occurrence]) -> tuple[Severity, str, str]:
    """A finding's severity, fix and installed versions over the occurrences that carry it.

    Where the repository carries the package at several versions, the fix is the one that
    covers them all (the highest of their fixes), or the fixes listed where they cannot be
    ordered: the first one found would leave the other versions vulnerable.
    """
    if len(occs) == 1:
        o = occs[0]
        return o.severity, o.fix_version, o.version
    severity = max(o.severity for o in occs)
    fixes = sorted({o.fix_version for o in occs if o.fix_version})
    ecosystem = next((o.ecosystem for o in occs if o.ecosystem), "")
    best = versions.highest(fixes, ecosystem=ecosystem, package=occs[0].package)
    fix = (best or ", ".join(fixes)) if fixes else ""
    installed = ", ".join(sorted({o.version for o in occs}))
    return severity, fix, installed


def _by_version(occs: list[Occurrence]) -> list[tuple[Severity, str, str]]:
    """(severity, fix, installed version) for each installed version: one event each, so an
    alert's action (package, installed version) gets the fix of that version."""
    groups: dict[str, list[Occurrence]] = {}
    for o in occs:
        groups.setdefault(o.version, []).append(o)
    return [_summary(group) for _, group in sorted(groups.items())]


def _insert(conn: Connection, statement: Any, values: dict[str, Any]) -> int:
    """Insert one row; its new id."""
    key = conn.execute(statement, values).inserted_primary_key
    assert key is not None
    return int(key[0])


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> list[list[Any]]:
    items = list(items)
    return [items[i:i + size] for i in range(0, len(items), size)]
