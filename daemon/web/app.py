"""The pages: one GET request → one response, rendered from the store, read-only.

``WebApp.respond`` runs on the store's worker thread (no database work on the event loop). It
checks the credentials first (``auth.py``), routes the path, renders a Jinja2 template with
autoescaping (so nothing from scan data reaches the page as markup) and adds the security
headers. There is no write action, so no form posts and nothing for CSRF to forge.

Paths (the alerts' Details links use the first two)::

    /findings?registry=&project=&repository=&severity=&fixable=&limit=
    /images/{registry}/{project}/{repository}@{digest}
    /                       overview          /fix?…same filters…&page=   fix first
    /repositories/{registry}/{project}/{repository}
    /finding?registry=&project=&repository=&vulnerability=&package=
    /trends  /trends/open.svg  /trends/fix.svg  /static/style.css
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qs, quote, unquote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape

from daemon import log
from daemon.alerts.group import RunContext, harbor_link
from daemon.config_types import Config
from daemon.errors import UnknownTarget
from daemon.ignores import IgnoreRules
from daemon.model import ExploitInfo, Severity
from daemon.remedy import Remedy
from daemon.store import findings as store_findings
from daemon.store import intel as store_intel
from daemon.store import pages
from daemon.web import charts
from daemon.web.auth import BasicAuth
from daemon.web.columns import ACTION_COLUMNS, COLUMNS

if TYPE_CHECKING:
    from daemon.store.db import Store

_log = log.get(__name__)

PAGE = 100  # findings per page
MAX_PAGE = 1000
ACTIONS = 50  # remediation actions per page of "Fix first" (the next ones a link away)
IMAGES = 10  # images listed per action (the rest counted; its findings a link away)
KEPT = 32  # pages' results remembered (plans, rendered pages, charts) since history changed
_MISSING = object()
T = TypeVar("T")
TREND_DAYS = 30

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# An SVG opened on its own is a document: pygal's inline <style> needs it, nothing else.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class NotFound(Exception):
    pass


def _severity_filter(value: str) -> Severity | None:
    return Severity.from_name(value) if value else None


class WebApp:
    def __init__(self, config: Config, store: Store, auth: BasicAuth,
                 project_ids: Mapping[tuple[str, str], int] | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.store = store  # a Store over a read-only engine (store/pages.read_only_store)
        self.auth = auth
        self.project_ids = project_ids if project_ids is not None else {}
        self._stored_ids: tuple[float, Mapping[tuple[str, str], int]] = (-1e9, {})
        self.now = now
        self.env = Environment(loader=PackageLoader("daemon.web", "templates"),
                               autoescape=select_autoescape(default=True, default_for_string=True),
                               trim_blocks=True, lstrip_blocks=True,
                               extensions=["jinja2.ext.do"])
        self.env.globals.update(qs=_qs, path=_path, repo_path=_repo_path, columns=COLUMNS,
                                action_columns=ACTION_COLUMNS,
                                sev_names=[s.label for s in _shown()])
        self.env.filters["when"] = _when
        self.env.filters["ago"] = lambda at: _ago(at, self.now())
        self.css = files("daemon.web").joinpath("static/style.css").read_bytes()
        self.page_size = ACTIONS  # "Fix first" actions per page
        self._kept: dict[Hashable, Any] = {}  # what ``kept`` keeps, oldest first
        self._kept_lock = threading.Lock()  # pages render on worker threads
        # Counts the plan anew for the history in the database and returns the history it
        # counted (``Store.build_plan`` on the daemon's writer); None: no writer, the pages
        # count a plan they find stale themselves.
        self.rebuild: Callable[[], str] | None = None
        self._rebuild_lock = threading.Lock()  # one count at a time; the others wait for it

    # --- the request ------------------------------------------------------------------------
    def handles(self, path: str) -> bool:
        return path not in ("/metrics", "/healthz", "/readyz") and not path.startswith("/hooks/")

    def respond(self, method: str, target: str, headers: Mapping[str, str]) -> Response:
        if not self.auth.allows(headers.get("authorization", "")):
            return self._secure(Response(401, "text/plain; charset=utf-8",
                                         b"authentication required\n",
                                         {"WWW-Authenticate": 'Basic realm="scanwatch"'}))
        if method not in ("GET", "HEAD"):
            return self._secure(Response(405, "text/plain; charset=utf-8",
                                         b"the pages are read-only\n", {"Allow": "GET, HEAD"}))
        raw_path, _, raw_query = target.partition("?")
        path = unquote(raw_path)
        query = {k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        try:
            return self._secure(self._route(path, query))
        except (NotFound, UnknownTarget, ValueError) as exc:
            body = self._page("missing.html", title="Not found", message=str(exc) or path)
            return self._secure(Response(404, "text/html; charset=utf-8", body))
        except Exception as exc:  # noqa: BLE001 (one page failing must not end the listener)
            _log.error("page_failed", path=path, error=f"{type(exc).__name__}: {exc}")
            return self._secure(Response(500, "text/plain; charset=utf-8",
                                         b"the page failed; the daemon's log says why\n"))

    def _secure(self, response: Response) -> Response:
        response.headers = {**SECURITY_HEADERS, **response.headers}
        if response.content_type.startswith("image/svg"):
            response.headers["Content-Security-Policy"] = SVG_CSP
        return response

    def _route(self, path: str, q: dict[str, str]) -> Response:
        if path == "/static/style.css":
            return Response(200, "text/css; charset=utf-8", self.css)
        if path in ("/trends/open.svg", "/trends/fix.svg"):
            return Response(200, "image/svg+xml; charset=utf-8",
                            self.kept(("chart", path), lambda: self._chart(path)).encode())
        views: dict[str, Callable[[dict[str, str]], bytes]] = {
            "/": self.overview, "/fix": self.fix_first, "/findings": self.findings,
            "/finding": self.finding, "/trends": self.trends}
        if path in views:
            return Response(200, "text/html; charset=utf-8", views[path](q))
        for prefix, view in (("/repositories/", self.repository), ("/images/", self.image)):
            if path.startswith(prefix):
                return Response(200, "text/html; charset=utf-8", view(path[len(prefix):]))
        raise NotFound(f"no page at {path}")

    def _page(self, template: str, **values: Any) -> bytes:
        return self.env.get_template(template).render(now=self.now(), **values).encode()

    # --- pages ------------------------------------------------------------------------------
    def overview(self, q: dict[str, str]) -> bytes:
        from daemon.config import next_run

        now = self.now()
        with self.store.engine.connect() as conn:
            regs = pages.registries(conn)
            runs = pages.last_runs(conn)
            outbox = pages.outbox_health(conn)
        schedules = [{"name": s.name, "registries": s.registries, "cron": s.cron,
                      "next": next_run(s.cron, s.timezone, now), "last": runs.get(s.name)}
                     for s in self.config.schedules]
        return self._page("overview.html", title="Overview", registries=regs,
                          schedules=schedules, outbox=outbox, severities=_shown())

    def _query(self, q: dict[str, str]) -> store_findings.FindingQuery:
        fixable = {"yes": True, "no": False}.get(q.get("fixable", ""))
        return store_findings.FindingQuery(
            registry=q.get("registry") or None, project=q.get("project") or None,
            repository=q.get("repository") or None,
            min_severity=_severity_filter(q.get("severity", "")), fixable=fixable,
            package=q.get("package") or None)

    def findings(self, q: dict[str, str]) -> bytes:
        query = self._query(q)
        limit = min(_whole(q, "limit", PAGE), MAX_PAGE)
        rules = self.store.ignore_rules(self.config)
        rows, rest = self.store.finding_page(query, limit=limit, rules=rules, now=self.now())
        return self._page("findings.html", title="Open findings", rows=rows, rest=rest,
                          filters=q, limit=limit, harbor=self._harbor, more=limit + PAGE,
                          exploit=self._exploit(r.key.vulnerability for r in rows))

    def plan(self, query: store_findings.FindingQuery, offset: int = 0
             ) -> tuple[list[Remedy[Any]], int]:
        """The ``page_size`` actions of ``query``'s remediation plan from ``offset`` and how
        many there are: from the plan the writer counted (``store/plan.py``), counted anew
        when it is stale (``rebuild``), else counted here (``actions.counted``: seconds on a
        large registry); ``kept`` while history, rules and day stay."""
        rules = self.store.ignore_rules(self.config)
        return self.kept(("plan", query, rules, offset, self.page_size),
                         lambda: self._planned(query, rules, offset))

    def _planned(self, query: store_findings.FindingQuery, rules: IgnoreRules, offset: int
                 ) -> tuple[list[Remedy[Any]], int]:
        now = self.now()

        def planned(version: str | None = None) -> tuple[list[Remedy[Any]], int] | None:
            return self.store.planned_actions(query, rules=rules, now=now,
                                              limit=self.page_size, offset=offset,
                                              version=version)

        found = planned()
        if found is None and self.rebuild is not None:
            with self._rebuild_lock:  # another request may have counted it meanwhile
                found = planned()
                if found is None:
                    # The history counted is at least as new as this request: not stale.
                    found = planned(self.rebuild())
        if found is not None:
            return found
        every = self.store.finding_actions(query, rules=rules, now=now)
        return every[offset:offset + self.page_size], len(every)

    def kept(self, what: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, or what it gave while history (``pages.data_version``), ``what``
        (the page and its inputs: filters, ignore rules) and the day are the same as when it
        last ran: a page read from the whole of a large history is computed once per change."""
        with self.store.engine.connect() as conn:
            version = pages.data_version(conn)
        try:
            key: Hashable = (what, version, self.now().date())
            hash(key)
        except TypeError:  # an input the cache cannot compare: computed every time
            return compute()
        with self._kept_lock:
            found = self._kept.get(key, _MISSING)
        if found is _MISSING:
            found = compute()
            with self._kept_lock:
                self._kept[key] = found
                while len(self._kept) > KEPT:
                    self._kept.pop(next(iter(self._kept)))
        return cast(T, found)

    def warm(self) -> None:
        """Count the plan of the history just written (``rebuild``) and keep the whole
        registry's first screen, ahead of the first visit; the daemon calls it after each
        run."""
        if self.rebuild is not None:
            with self._rebuild_lock:
                self.rebuild()
        self.fix_first({})

    def fix_first(self, q: dict[str, str]) -> bytes:
        """One page of the plan (``page_size`` actions), kept rendered like the plan: a
        large page costs more to render than to read."""
        query = self._query(q)
        page = _whole(q, "page", 1)
        rules = self.store.ignore_rules(self.config)
        return self.kept(("fix", query, rules, page, self.page_size),
                         lambda: self._fix_page(query, q, page))

    def _fix_page(self, query: store_findings.FindingQuery, q: dict[str, str], page: int
                  ) -> bytes:
        offset = (page - 1) * self.page_size
        actions, total = self.plan(query, offset)
        pages = max(1, -(-total // self.page_size))
        if page > pages:
            raise NotFound(f"no page {page} of Fix first: {total} action"
                           f"{'' if total == 1 else 's'} for these filters, {pages} page"
                           f"{'' if pages == 1 else 's'}")
        filters = {k: v for k, v in q.items() if k != "page"}
        return self._page("fix.html", title="Fix first", actions=actions, total=total,
                          filters=filters, first=offset + 1, page=page, pages=pages, why=_why,
                          images=self._images,
                          exploit=self._exploit(v.id for r in actions
                                                for v in r.vulnerabilities))

    def _exploit(self, cves: Iterable[str]) -> dict[str, ExploitInfo]:
        """What the KEV and EPSS copies in force say of ``cves`` (the page's columns)."""
        with self.store.engine.connect() as conn:
            return store_intel.exploit_info(conn, cves)

    def repository(self, rest: str) -> bytes:
        registry, project, repository = _split_target(rest)
        history = self.store.history(registry, project, repository)
        with self.store.engine.connect() as conn:
            repo_id = pages.repository_id(conn, registry, project, repository)
            images = pages.images(conn, repo_id) if repo_id is not None else []
        return self._page("repository.html", title=f"{project}/{repository}", registry=registry,
                          project=project, repository=repository, images=images,
                          history=list(reversed(history)),
                          harbor=self._harbor(registry, project, repository))

    def image(self, rest: str) -> bytes:
        where, at, digest = rest.rpartition("@")
        if not at:
            raise NotFound("an image is /images/REGISTRY/PROJECT/REPOSITORY@DIGEST")
        registry, project, repository = _split_target(where)
        history = [h for h in self.store.history(registry, project, repository)
                   if digest in h.digest.split(",")]
        if not history:
            raise NotFound(f"no image {registry}/{project}/{repository}@{digest} in the history")
        query = store_findings.FindingQuery(registry, project, repository, include_ignored=True)
        rules = self.store.ignore_rules(self.config)
        with self.store.engine.connect() as conn:
            heads = list(itertools.islice(store_findings.heads_in_order(
                conn, query, rules=rules, now=self.now()), MAX_PAGE))
            rows = [r for r in store_findings.with_carriers(conn, heads) if digest in r.digests]
        tags = sorted({t for h in history for t in h.tags})
        return self._page("image.html", title=f"{repository}@{digest[:19]}", registry=registry,
                          project=project, repository=repository, digest=digest, tags=tags,
                          history=list(reversed(history)), rows=rows,
                          exploit=self._exploit(r.key.vulnerability for r in rows),
                          harbor=self._harbor(registry, project, repository, digest))

    def finding(self, q: dict[str, str]) -> bytes:
        from daemon import sla as sla_rules
        from daemon.model import FindingKey

        key = FindingKey(q.get("registry", ""), q.get("project", ""), q.get("repository", ""),
                         q.get("vulnerability", ""), q.get("package", ""))
        with self.store.engine.connect() as conn:
            repo_id = pages.repository_id(conn, key.registry, key.project, key.repository)
            found = None if repo_id is None else pages.finding(
                conn, repo_id, key.vulnerability, key.package)
        if found is None:
            raise NotFound(f"no finding {key.vulnerability} in {key.package} of "
                           f"{key.registry}/{key.project}/{key.repository}")
        detail, events = found
        now = self.now()
        rules = self.store.ignore_rules(self.config)
        ignored_now = rules.reason(key, now)
        deadline = None
        if self.config.sla is not None and detail.resolved_at is None:
            kev_due = None
            if self.config.sla.kev_due_date:
                with self.store.engine.connect() as conn:
                    entry = store_intel.kev_dates(conn).get(key.vulnerability)
                kev_due = entry[1] if entry else None
            deadline = sla_rules.deadline_for(detail.severity, detail.opened_at, self.config.sla,
                                              kev_due)
        return self._page("finding.html", title=key.vulnerability, key=key, f=detail,
                          events=events, ignored_now=ignored_now, deadline=deadline,
                          overdue=deadline is not None and now > deadline,
                          harbor=self._harbor(key.registry, key.project, key.repository))

    def trends(self, q: dict[str, str]) -> bytes:
        with self.store.engine.connect() as conn:
            medians = pages.time_to_fix(conn, self.now() - timedelta(days=TREND_DAYS))
        return self._page("trends.html", title="Trends", days=TREND_DAYS, medians=medians,
                          severities=_shown())

    def _stored_project_ids(self) -> Mapping[tuple[str, str], int]:
        """Harbor's project ids as stored by the walks (of any instance), read at most once a
        minute: a page lists many links."""
        read_at, ids = self._stored_ids
        if time.monotonic() - read_at > 60:
            ids = self.store.project_ids()
            self._stored_ids = (time.monotonic(), ids)
        return ids

    def _chart(self, path: str) -> str:
        now = self.now()
        with self.store.engine.connect() as conn:
            if path == "/trends/open.svg":
                days = [(now - timedelta(days=n)).date() for n in range(TREND_DAYS, -1, -1)]
                return charts.open_findings(days, pages.open_by_day(conn, days))
            return charts.time_to_fix(pages.time_to_fix(conn, now - timedelta(days=TREND_DAYS)))

    def _images(self, r: Remedy[Any]) -> tuple[list[tuple[str, list[ImageLink]]], int]:
        return _images_of(r, self._harbor)

    def _harbor(self, registry: str, project: str, repository: str, digest: str = "") -> str:
        ids = self.project_ids  # this process's walks; else what any walk stored
        if (registry, project) not in ids:
            ids = self._stored_project_ids()
        ctx = RunContext(registry_urls={r.name: r.url for r in self.config.registries},
                         project_ids=ids)
        return harbor_link(ctx, registry, project, repository, digest)


def _shown() -> list[Severity]:
    return [s for s in sorted(Severity, reverse=True) if s is not Severity.NONE]


def _split_target(rest: str) -> tuple[str, str, str]:
    parts = rest.strip("/").split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise NotFound("a repository is REGISTRY/PROJECT/REPOSITORY")
    return parts[0], parts[1], parts[2]


def _whole(q: Mapping[str, str], name: str, default: int) -> int:
    """The query's ``name`` as a whole number ≥ 1 (``default`` when absent)."""
    text = q.get(name) or str(default)
    if not text.isdigit() or int(text) < 1:
        raise NotFound(f"{name} must be a whole number from 1, not {text!r}")
    return int(text)


def _qs(**values: Any) -> str:
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _path(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


def _repo_path(registry: str, project: str, repository: str) -> str:
    """registry/project/repository for a path: a repository's own slashes stay."""
    return f"{_path(registry, project)}/{quote(repository, safe='/')}"


def _when(at: datetime | None) -> str:
    return "—" if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


def _ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never"
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    seconds = int((now - at).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{seconds // size} {unit}"
            break
    else:
        text = f"{seconds} s"
    return f"in {text}" if future else f"{text} ago"


@dataclass(frozen=True, slots=True)
class ImageLink:
    """One image of an action, as its row of "Fix first" links it."""

    page: str  # its image page
    short: str  # its digest, shortened
    harbor: str  # its artifact in Harbor ("" where the registry has no link)


def _images_of(r: Remedy[Any], harbor: Callable[[str, str, str, str], str],
               limit: int = IMAGES) -> tuple[list[tuple[str, list[ImageLink]]], int]:
    """The first ``limit`` images that the action's shown findings are in, by repository
    ("project/repository", its images), and how many images there are."""
    seen: dict[tuple[str, str, str, str], None] = {}
    for m in r.members:
        for f in m.rows:
            for d in f.digests:
                seen.setdefault((f.key.registry, f.key.project, f.key.repository, d))
    by_repo: dict[tuple[str, str, str], list[ImageLink]] = {}
    for registry, project, repository, d in itertools.islice(seen, limit):
        by_repo.setdefault((registry, project, repository), []).append(ImageLink(
            f"/images/{_repo_path(registry, project, repository)}@{d}", d[7:19],
            harbor(registry, project, repository, d)))
    return [(f"{p}/{n}", links) for (_, p, n), links in by_repo.items()], len(seen)


def _why(r: Remedy[Any]) -> str:
    """Why the action is on the list, in a sentence."""
    worst = r.top_severity.label
    n = len(r.vulnerabilities)
    if r.fix_version:
        return (f"{r.package} {r.fix_version} fixes {n} vulnerabilit{'y' if n == 1 else 'ies'}"
                f" (worst {worst}) found in {r.installed_version}")
    if r.candidate_fix_versions:
        return (f"the fixes of {r.package} cannot be ordered: choose one of them for {n} "
                f"vulnerabilities (worst {worst})")
    return f"no fix yet for {n} vulnerabilit{'y' if n == 1 else 'ies'} (worst {worst})"
