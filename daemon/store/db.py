"""The history database: engine, pragmas, migrations, the daemon lock, and the ``Store``.

``open_store(url)`` takes an SQLAlchemy URL (``[daemon] database``): ``sqlite:////path`` (WAL,
foreign keys, ``synchronous=NORMAL``, a busy timeout; the parent directory is created) or
``postgresql+psycopg://…``. It migrates the schema in place and returns a ``Store``.

The store's work is plain functions taking a Connection, one module per aggregate:
``inventory.py`` (artifacts and tags), ``history.py`` (scans and report content, findings and
their events as scans change them), ``resolve.py`` (findings that change without a scan),
``findings.py`` and ``queries.py`` (reading findings and history), ``runs.py``, ``outbox.py``
(outbox and cursors), ``allowlists.py`` (ignores). ``Store`` owns the engine, the caches and
the daemon lock; ``transaction()`` is its unit of work, and each method is one transaction
(or one read) around one of those functions.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from daemon import log
from daemon.config_types import Config, IgnoreConfig
from daemon.errors import DatabaseLocked, StoreError
from daemon.ignores import NO_RULES, IgnoreRules, StoredIgnore
from daemon.model import (
    Artifact,
    ArtifactRef,
    ChangeEvent,
    CveAllowlist,
    InventoryDelta,
    ScanRecord,
    ScanResult,
    Severity,
)
from daemon.store import (
    allowlists,
    findings,
    history,
    ignores,
    inventory,
    projects,
    queries,
    reports_known,
    resolve,
    runs,
)
from daemon.store import lineage as lineage_store
from daemon.store.base import Caches, sqlite_path
from daemon.store.content import ContentCache
from daemon.store.findings import FindingHead, FindingQuery, FindingRow, Keep
from daemon.store.leases import fence_current  # ha: lease fencing (issue 19)
from daemon.store.migrations import migrate
from daemon.store.queries import HistoryEntry
from daemon.store.runs import RunRow
from daemon.store.worker import DatabaseThread

if TYPE_CHECKING:
    from daemon.lineage import Image, Lineage
    from daemon.remedy import Members, Remedy
    from daemon.store.plan import Counted

_log = log.get(__name__)

_PG_LOCK_KEY = 0x5C4E_3A7C  # pg_advisory_lock key: "scanwatch daemon"

SQLITE_PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL",
                  "busy_timeout=10000", "journal_size_limit=67108864")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    if isinstance(dbapi_conn, sqlite3.Connection):
        cur = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cur.execute(f"PRAGMA {pragma}")
        cur.close()


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` with scanwatch's connection settings (no migration)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"[daemon] database: {url!r} is not an SQLAlchemy URL") from exc
    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror}") from exc
    try:
        engine = create_engine(parsed)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"[daemon] database: cannot use {parsed!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def open_store(url: str) -> Store:
    """Open (creating and migrating in place as needed) the history database at ``url``."""
    engine = create_store_engine(url)
    where = str(sqlite_path(url) or make_url(url).render_as_string(hide_password=True))
    try:
        version = migrate(engine, where=where)
    except DBAPIError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the database {where}: {exc.orig}") from exc
    except BaseException:
        engine.dispose()
        raise
    _log.debug("store_opened", database=where, schema_version=version)
    return Store(engine, url)


def open_configured_store(config: Config) -> Store:
    """The history database of ``config`` (``[daemon] database``)."""
    from daemon.config import default_database

    return open_store(config.daemon.database or default_database())


class Store:
    """The history database: its engine, caches and daemon lock, and one method per thing
    callers ask of it (each a transaction around a function of the aggregate modules)."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.caches = Caches()
        self.thread = DatabaseThread()  # where async callers run this store's work
        self._lock_file: IO[str] | None = None
        self._lock_conn: Connection | None = None

    @property
    def contents(self) -> ContentCache:
        return self.caches.contents

    # --- units of work --------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction: committed when the block ends, rolled back when it
        raises. The unit of work of every write."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads (nothing committed)."""
        with self.engine.connect() as conn:
            yield conn

    # --- artifacts and tags ---------------------------------------------------------------
    def present_artifacts(self, registry: str) -> list[ArtifactRef]:
        """The top-level artifacts the last recorded walk of ``registry`` listed."""
        with self.reading() as conn:
            return inventory.present_artifacts(conn, registry)

    def record_inventory(self, registry: str, artifacts: Sequence[Artifact] | inventory.Walked,
                         now: datetime, scope: Collection[tuple[str, str]] | None = None
                         ) -> InventoryDelta:
        """Record a walk of ``registry`` (``inventory.record_inventory``); with ``scope``, a
        walk of only those (project, repository) pairs."""
        with self.transaction() as conn:
            fence_current(conn)  # ha: lease fencing (issue 19)
            return inventory.record_inventory(conn, self.caches, registry, artifacts, now,
                                              scope)

    # --- scans, report contents, findings and their events --------------------------------
    def record_scan(self, result: ScanResult, now: datetime,
                    rules: IgnoreRules = NO_RULES) -> list[ChangeEvent]:
        """Store one scan outcome and apply it to findings; the changes it brought."""
        return self.record_scans([result], now, rules)

    def record_scans(self, results: Sequence[ScanResult], now: datetime,
                     rules: IgnoreRules = NO_RULES) -> list[ChangeEvent]:
        """``record_scan`` for many results in one transaction (what collect should prefer)."""
        if not any(r.state.finished for r in results):
            return []
        with self.transaction() as conn:
            fence_current(conn)  # ha: lease fencing (issue 19)
            return history.record_scans(conn, self.caches, results, now, rules)

    def resolve_removed(self, registry: str, removed: Sequence[ArtifactRef | str],
                        now: datetime, rules: IgnoreRules = NO_RULES) -> list[ChangeEvent]:
        """Stop counting artifacts the inventory no longer lists or tags (``resolve``)."""
        if not removed:
            return []
        with self.transaction() as conn:
            return resolve.resolve_removed(conn, self.caches, registry, removed, now, rules)

    def reconcile_ignores(self, rules: IgnoreRules, now: datetime,
                          registry: str | None = None) -> list[ChangeEvent]:
        """Bring open findings' ignored marks in line with ``rules`` at ``now``."""
        with self.transaction() as conn:
            return resolve.reconcile_ignores(conn, rules, now, registry)

    def scan_records(self, registry: str, digests: Iterable[str] | None = None
                     ) -> dict[str, ScanRecord]:
        """The last scan of each listed artifact of ``registry``, keyed by digest (with
        ``digests``, of those alone)."""
        with self.reading() as conn:
            return queries.scan_records(conn, registry, digests)

    def known_report_ids(self, registry: str) -> set[str]:
        """Report ids already stored for ``registry`` (collect fetches each report once)."""
        with self.reading() as conn:
            return queries.known_report_ids(conn, registry)

    def known_reports_among(self, registry: str, report_ids: Iterable[str],
                            upto: int | None = None) -> set[str]:
        """Of these report ids, those already stored for ``registry`` (an import's batch);
        with ``upto`` (a ``last_scan_id``), only those stored by then."""
        with self.reading() as conn:
            return reports_known.known_among(conn, registry, report_ids, upto)

    def last_scan_id(self) -> int:
        with self.reading() as conn:
            return reports_known.last_scan_id(conn)

    def open_finding_counts(self) -> dict[Severity, int]:
        """How many findings are open (not ignored), per severity (for metrics)."""
        with self.reading() as conn:
            return queries.open_finding_counts(conn)

    def open_findings(
        self, *, registry: str | None = None, project: str | None = None,
        repository: str | None = None, min_severity: Severity | None = None,
        fixable: bool | None = None, include_ignored: bool = False,
        rules: IgnoreRules | None = None, now: datetime | None = None,
    ) -> list[FindingRow]:
        """Open findings, with the digests, tags and installed versions that carry them now.

        With ``rules`` (and ``now``), whether a finding is ignored is what those rules say at
        ``now`` (a rule added or removed counts at once); without, the mark history keeps."""
        query = FindingQuery(registry, project, repository, min_severity, fixable,
                             include_ignored)
        return list(self.iter_findings(query, rules=rules, now=now or datetime.now(UTC)))

    def iter_findings(self, query: FindingQuery, *, rules: IgnoreRules | None, now: datetime,
                      keep: Keep | None = None) -> Iterator[FindingRow]:
        """Every finding ``query`` matches (and ``keep`` keeps), in output order, streamed."""
        with self.reading() as conn:
            yield from findings.ordered(conn, query, rules=rules, now=now, keep=keep)

    def finding_listing(self, query: FindingQuery, *, rules: IgnoreRules | None, now: datetime
                        ) -> Iterator[Any]:
        """``iter_findings``' findings read lean (``store/listing.py``): plain rows where the
        carriers' summary holds, ``FindingRow`` where they are read live."""
        from daemon.store import listing

        with self.reading() as conn:
            yield from listing.rows(conn, query, rules=rules, now=now)

    def finding_batches(self, query: FindingQuery, *, rules: IgnoreRules | None, now: datetime,
                        keep: Keep | None = None) -> Iterator[list[FindingRow]]:
        """Every matching finding with its carriers, in no particular order, a batch of
        repositories at a time (for summaries that group them anyway)."""
        with self.reading() as conn:
            yield from findings.by_repository(conn, query, rules=rules, now=now, keep=keep)

    def finding_actions(self, query: FindingQuery, *, rules: IgnoreRules | None, now: datetime,
                        lineage: Callable[[str, set[str]], Any] | None = None
                        ) -> list[Remedy[Members]]:
        """The remediation plan of the matching findings (``remedy.plan_findings``'s), counted
        in SQL (``store/actions.py``): one screen, whatever the size of the registry.
        ``lineage(registry, digests)``: the lineage advisor of those images of ``registry``."""
        from daemon.remedy import plan_counted  # the version orderings load with it
        from daemon.store import actions

        with self.reading() as conn:
            groups = list(actions.counted(conn, query, rules, now))
        if lineage is None:
            return plan_counted(groups)
        # Only the images of the rows shown are attributed: their lineage is what is read.
        wanted: dict[str, set[str]] = {}
        for row, *_ in groups:
            wanted.setdefault(row.key.registry, set()).update(row.digests)
        advisors: dict[str, Any] = {}

        def advisor(registry: str) -> Any:
            if registry not in advisors:
                advisors[registry] = lineage(registry, wanted.get(registry, set()))
            return advisors[registry]
        return plan_counted(groups, advisor)

    def build_plan(self, rules: IgnoreRules, now: datetime) -> str:
        """Count the remediation plan of every open finding under ``rules`` at ``now`` and
        keep it for the pages (``store/plan.py``); the history it counted (``plan.answer``'s
        ``version``)."""
        return self.save_plan(self.count_plan(rules, now), rules, now)

    def count_plan(self, rules: IgnoreRules, now: datetime) -> Counted:
        """``build_plan``'s reads (any thread): the history counted and its buckets."""
        from daemon.store import plan

        with self.reading() as conn:
            return plan.count(conn, rules, now)

    def save_plan(self, counted: Counted, rules: IgnoreRules, now: datetime) -> str:
        """``build_plan``'s write, one transaction (the writer's thread)."""
        from daemon.store import plan

        with self.transaction() as conn:
            plan.save(conn, counted, rules, now)
        return counted.version

    def planned_actions(self, query: FindingQuery, *, rules: IgnoreRules | None, now: datetime,
                        limit: int | None = None, version: str | None = None, offset: int = 0
                        ) -> tuple[list[Remedy[Members]], int] | None:
        """The ``limit`` actions of ``query``'s plan from ``offset`` and how many there are,
        from the plan ``build_plan`` kept; None when it was kept for another history (than
        ``version``, else the one now) or other rules (``plan.answer``). A repository's plan
        is counted from its findings."""
        from daemon.remedy import plan_counted
        from daemon.store import actions, plan

        with self.reading() as conn:
            if query.repository is not None:
                every = plan_counted(actions.counted(conn, query, rules, now))
                end = None if limit is None else offset + limit
                return every[offset:end], len(every)
            found = plan.answer(conn, query, rules, now, limit, version, offset)
        return None if found is None else (plan_counted(found.groups), found.total)

    def overdue_findings(self, spans: Mapping[Severity, timedelta], now: datetime
                         ) -> list[FindingRow]:
        """Open findings past their SLA deadline at ``now`` (``findings.overdue``)."""
        with self.reading() as conn:
            return list(findings.overdue(conn, spans, now))

    def findings_of(self, wanted: Callable[[str, str], bool], now: datetime
                    ) -> list[FindingRow]:
        """Open findings whose (vulnerability, package) is ``wanted``."""
        with self.reading() as conn:
            pairs = {p for p in findings.open_pairs(conn) if wanted(*p)}
            return list(findings.of_pairs(conn, pairs, now))

    def finding_heads(self, query: FindingQuery, *, rules: IgnoreRules | None, now: datetime,
                      keep: Keep | None = None) -> Iterator[FindingHead]:
        """The matching finding rows in output order without their carriers."""
        with self.reading() as conn:
            yield from findings.heads_in_order(conn, query, rules=rules, now=now, keep=keep)

    def finding_page(self, query: FindingQuery, *, limit: int, rules: IgnoreRules | None,
                     now: datetime, keep: Keep | None = None
                     ) -> tuple[list[FindingRow], int]:
        """The first ``limit`` findings in output order, and how many more match."""
        with self.reading() as conn:
            return findings.page(conn, query, limit=limit, rules=rules, now=now, keep=keep)

    def history(self, registry: str, project: str, repository: str,
                tag: str | None = None) -> list[HistoryEntry]:
        """A repository's (or one tag's) scans over time with the changes each brought."""
        with self.reading() as conn:
            return queries.history(conn, registry, project, repository, tag)

    # --- runs -----------------------------------------------------------------------------
    def record_run_start(self, schedule: str, now: datetime) -> int:
        with self.transaction() as conn:
            fence_current(conn)  # ha: lease fencing (issue 19)
            return runs.record_run_start(conn, schedule, now)

    def record_run_finish(self, run_id: int, now: datetime, result: str,
                          detail: str = "") -> None:
        with self.transaction() as conn:
            fence_current(conn)  # ha: lease fencing (issue 19)
            runs.record_run_finish(conn, run_id, now, result, detail)
        try:
            self.refresh_carriers()
        except SQLAlchemyError as exc:  # what stays marked is read from its carriers
            _log.warning("carriers_not_summarised", error=type(exc).__name__)

    def refresh_carriers(self) -> int:
        """Summarise anew the carriers of every repository changed since they were last
        (``carrier_summary.refresh``: a batch of repositories per transaction); how many."""
        from daemon.store import carrier_summary

        return carrier_summary.refresh(self.transaction)

    def last_run(self, schedule: str) -> RunRow | None:
        """The latest run of ``schedule`` (started, finished or not), for ``on_missed``."""
        with self.reading() as conn:
            return runs.last_run(conn, schedule)

    # --- lineage (daemon/lineage/) --------------------------------------------------------
    def lineage_names(self, registry: str, digests: Iterable[str]) -> set[tuple[str, str]]:
        """(project, repository) of the images with these digests."""
        with self.reading() as conn:
            return lineage_store.names(conn, registry, digests)

    def lineage_known(self, registry: str, now: datetime | None = None,
                      digests: Iterable[str] | None = None, layers_wanted: bool = False
                      ) -> set[str]:
        with self.reading() as conn:
            return lineage_store.known(conn, registry, now, digests, layers_wanted)

    def save_lineage_facts(self, registry: str, fetched: Iterable[Image], now: datetime
                           ) -> int:
        """Add (or replace) the fetched facts of these images (a run saves them by batches)."""
        with self.transaction() as conn:
            return lineage_store.save_facts(conn, registry, fetched, now)

    def record_lineage(
        self, registry: str, fetched: Iterable[Image], now: datetime,
        resolve_with: Callable[[Iterable[Image]],
                               Mapping[str, Lineage] | Iterable[tuple[str, Lineage]]],
    ) -> dict[str, Lineage]:
        """Add the fetched facts, then re-resolve every image of the registry, in one
        transaction; returns the lineage of the images with a base in the registry (what
        rebuild advice starts from). ``resolve_with`` is handed the registry's images as a
        source that reads them again page by page at each iteration (``lineage.resolve_each``
        iterates it twice), not a list of every image with its build history; what it yields
        is written a page at a time, as it comes, not held for every image."""
        with self.transaction() as conn:
            lineage_store.save_facts(conn, registry, fetched, now)
            marks = lineage_store.inventory_marks(conn, registry)
            resolved = resolve_with(lineage_store.Reread(conn, registry, marks))
            pairs = resolved.items() if isinstance(resolved, Mapping) else resolved
            with_base: dict[str, Lineage] = {}
            page: dict[str, Lineage] = {}
            for digest, one in pairs:
                page[digest] = one
                if one.base_digest:
                    with_base[digest] = one
                if len(page) >= lineage_store.READ_PAGE:
                    lineage_store.save_found(conn, registry,
                                             lineage_store.changed(conn, registry, page))
                    page = {}
            lineage_store.save_found(conn, registry, lineage_store.changed(conn, registry, page))
            return with_base

    def lineage_inputs(self, registry: str, salt: str) -> tuple[str, bool]:
        """The fingerprint of what ``registry``'s lineage resolves from now, and whether it
        is the one it was last resolved from (then resolving again would change nothing)."""
        with self.reading() as conn:
            now = lineage_store.inputs(conn, registry, salt)
            return now, now == lineage_store.resolved_inputs(conn, registry)

    def lineage_resolved(self, registry: str, fingerprint: str, now: datetime) -> None:
        with self.transaction() as conn:
            lineage_store.save_resolved_inputs(conn, registry, fingerprint, now)

    def announce_rebuilds(self, registry: str, targets: Mapping[str, str],
                          fixes: Mapping[str, frozenset[tuple[str, str]]], now: datetime) -> int:
        with self.transaction() as conn:
            return lineage_store.announce_rebuilds(conn, registry, targets, fixes, now)

    def lineage_view(self, registry: str) -> tuple[list[Image], dict[str, Lineage]]:
        with self.reading() as conn:
            return lineage_store.images(conn, registry), lineage_store.found(conn, registry)

    def lineage_view_of(self, registry: str, digests: Iterable[str]
                        ) -> tuple[list[Image], dict[str, Lineage]]:
        """``lineage_view`` as far as attributing findings of ``digests`` reads it
        (``lineage.view_of``)."""
        with self.reading() as conn:
            return lineage_store.view_of(conn, registry, digests)

    def lineage_images(self, registry: str, names: Collection[str] | None = None
                       ) -> list[Image]:
        """The registry's images (of these ``project/repository`` names, with ``names``)."""
        with self.reading() as conn:
            return lineage_store.images(conn, registry, names)

    def lineage_packages(self, registry: str, digests: Iterable[str]
                         ) -> dict[str, frozenset[tuple[str, str]]]:
        with self.reading() as conn:
            return lineage_store.packages(conn, registry, digests)

    def lineage_report_keys(self, registry: str, digests: Iterable[str]
                            ) -> dict[str, frozenset[tuple[str, str]]]:
        with self.reading() as conn:
            return lineage_store.report_keys(conn, registry, digests)

    # --- Harbor's project ids (links into its UI) ----------------------------------------
    def save_project_ids(self, registry: str, ids: Mapping[str, int], now: datetime) -> None:
        """Record the project ids a walk of ``registry`` listed (``store/projects.py``)."""
        with self.transaction() as conn:
            projects.save(conn, registry, ids, now)

    def project_ids(self) -> dict[tuple[str, str], int]:
        """(registry, project) → Harbor's project id, as the walks listed them."""
        with self.reading() as conn:
            return projects.load(conn)

    # --- ignores --------------------------------------------------------------------------
    def save_allowlists(self, registry: str, lists: Sequence[CveAllowlist],
                        now: datetime) -> None:
        """Replace ``registry``'s stored allowlists with a fresh, complete read."""
        with self.transaction() as conn:
            allowlists.save_allowlists(conn, registry, lists, now)

    def load_allowlists(self) -> tuple[CveAllowlist, ...]:
        """Every registry's allowlists as last read (``save_allowlists``)."""
        with self.reading() as conn:
            return allowlists.load_allowlists(conn)

    def ignore_rules(self, config: Config) -> IgnoreRules:
        """The ignore rules in force: ``config``'s and the Harbor allowlists last read for the
        registries that use them (the one value history, findings and alerts ask)."""
        rules = IgnoreRules.from_config(config, self.load_allowlists(), self.list_ignores())
        if not config.vex:
            return rules
        from daemon.intel.vex_rules import vex_rules

        return rules.with_vex(vex_rules(self.engine, config))

    def add_ignore(self, rule: IgnoreConfig, by: str, now: datetime) -> StoredIgnore:
        """Store an ignore rule from `scanwatch ignore add` (who, when)."""
        with self.transaction() as conn:
            return ignores.add(conn, rule, by, now)

    def list_ignores(self) -> tuple[StoredIgnore, ...]:
        """The ignore rules added from the command line, oldest first."""
        with self.reading() as conn:
            return ignores.every(conn)

    def remove_ignore(self, rule_id: int) -> bool:
        with self.transaction() as conn:
            return ignores.remove(conn, rule_id)

    def record_run_summary(self, run_id: int, summary: dict[str, Any]) -> None:
        """Keep what a run did with its row, for `scanwatch runs`."""
        if run_id:
            with self.transaction() as conn:
                runs.record_summary(conn, run_id, summary)

    # --- lifecycle ------------------------------------------------------------------------
    def acquire_daemon_lock(self) -> None:
        """Refuse a second daemon on the same database (DatabaseLocked, with a clear message).

        SQLite: an exclusive ``flock`` on ``<db>.lock`` beside the file. PostgreSQL: a
        session advisory lock on a connection held until ``close``.
        """
        path = sqlite_path(self.url)
        if path is not None:
            lock_path = path.with_name(path.name + ".lock")
            handle = open(lock_path, "a+")  # noqa: SIM115 (held open until close())
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise DatabaseLocked(
                    f"{path} is in use by another scanwatch daemon (pid {holder}); "
                    "stop it first or give this one another [daemon] database"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._lock_file = handle
            return
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_PG_LOCK_KEY})").scalar()
            conn.commit()
            if not got:
                conn.close()
                raise DatabaseLocked(
                    "the PostgreSQL database is in use by another scanwatch daemon; stop it "
                    "first or give this one another [daemon] database"
                )
            self._lock_conn = conn

    def release_daemon_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
        if self._lock_conn is not None:
            try:
                self._lock_conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_LOCK_KEY})")
                self._lock_conn.close()
            except SQLAlchemyError:
                pass
            self._lock_conn = None

    def ping(self) -> None:
        """Raise if the database cannot be reached (for /readyz)."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        self.thread.close()
        self.release_daemon_lock()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
