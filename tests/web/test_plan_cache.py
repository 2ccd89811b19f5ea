"""The "Fix first" plan is computed once per state of history (issue 18: the whole registry's
plan costs seconds on a large one): asked again, it comes from memory; a new scan, a new ignore
rule or the next day computes it again, and the page shows the new state. With the daemon's
writer behind it (``WebApp.rebuild``), the plan is read from the one the writer materialised
(``store/plan.py``), for every filter, and counted anew whenever it would be stale. Real SQLite
file, real Trivy reports, the pages' read-only store."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from daemon.config import load
from daemon.config_types import IgnoreConfig
from daemon.harbor.reports import load_report_file
from daemon.model import ScannerInfo, ScanResult, ScanState
from daemon.store.db import Store, open_store
from daemon.store.pages import read_only_store
from daemon.web.app import ACTIONS, WebApp
from daemon.web.auth import BasicAuth
from tests.store.store_helpers import PROJECT, REG, at, ref
from tests.store.test_actions_counted import plain, seed


def rescan(writer: Store, trivy: Path, when: datetime) -> None:
    """app-00's two debian images now report alpine's packages."""
    for digest in ("sha256:00a", "sha256:00b"):
        writer.record_scan(ScanResult(
            ref(digest, repository="app-00"), ScanState.SUCCESS, f"rep-new-{digest}", "manual",
            started_at=when, finished_at=when, scanner=ScannerInfo("Trivy", "", "0.58"),
            scanner_db_updated_at=when, report=load_report_file(
                trivy / "alpine-310.json.golden")), when)


def test_the_plan_is_kept_until_history_rules_or_the_day_change(tmp_path: Path,
                                                                trivy_fixtures: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    seed(url, trivy_fixtures)
    config = tmp_path / "config.toml"
    config.write_text(f'[daemon]\ndatabase = "{url}"\n\n[[registry]]\nname = "prod"\n'
                      'url = "https://harbor.example"\nusername = "u"\npassword = "p"\n')
    cfg = load(config, strict=False)
    now = [at(0)]
    app = WebApp(cfg, read_only_store(url), BasicAuth(None), now=lambda: now[0])
    query = app._query({})
    first = app.plan(query)
    assert first[0] and app.plan(query) is first  # from memory
    assert app.plan(app._query({"severity": "Critical"})) is not first  # another filter

    # New scans (app-00's two debian images now report alpine's packages): computed again.
    writer = open_store(url)
    rescan(writer, trivy_fixtures, at(1))
    writer.close()
    second = app.plan(query)
    assert second is not first and app.plan(query) is second
    assert plain(second[0]) != plain(first[0])  # the new reports' findings are in it
    page = app.respond("GET", "/fix", {})
    assert page.status == 200
    assert all(r.package.encode() in page.body for r in second[0][:5])

    # A stored ignore rule: computed again, and it hides what it names.
    writer = open_store(url)
    package = second[0][0].package
    writer.add_ignore(IgnoreConfig("accepted", at(0).date() + timedelta(days=9),
                                   package=package), "test", at(1))
    writer.close()
    third = app.plan(query)
    assert third is not second and package not in {r.package for r in third[0]}

    # The next day (a rule may have expired): computed again.
    now[0] = at(1)
    assert app.plan(query) is not third


FILTERS = [{}, {"severity": "Critical", "fixable": "yes"}, {"severity": "Medium"},
           {"fixable": "no"}, {"registry": REG, "project": PROJECT}, {"package": "bash"},
           {"repository": "app-03"}]


def paged(app: WebApp, q: dict[str, str]) -> list[tuple[str, str]]:
    """(package, installed version) of each action "Fix first" lists for the filters ``q``,
    following its "next page" links from the first page to the last."""
    shown: list[tuple[str, str]] = []
    target = f"/fix?{urlencode(q)}"
    while target:
        page = app.respond("GET", target, {})
        assert page.status == 200
        body = page.body.decode()
        shown += [(html.unescape(p), html.unescape(v)) for p, v in re.findall(
            r'<tr><td class="sev-\w+">\w+</td><td>([^<]*)</td><td>([^<]*)</td>', body)]
        link = re.search(r'<a href="(/fix\?[^"]*)">next page</a>', body)
        target = html.unescape(link.group(1)) if link else ""
        assert len(shown) <= 1000
    return shown


def test_the_materialised_plan_is_never_stale(tmp_path: Path, trivy_fixtures: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    seed(url, trivy_fixtures)
    config = tmp_path / "config.toml"
    config.write_text(f'[daemon]\ndatabase = "{url}"\n\n[[registry]]\nname = "{REG}"\n'
                      'url = "https://harbor.example"\nusername = "u"\npassword = "p"\n\n'
                      '[[ignore]]\nvulnerability = "CVE-2019-1559"\nreason = "until Monday"\n'
                      f'expires = "{at(1).date().isoformat()}"\n')
    cfg = load(config, strict=False)
    now = [at(0)]
    writer = open_store(url)
    builds: list[str] = []

    def rebuild() -> str:  # what the daemon does on its writer (daemon._count_plan)
        builds.append(writer.build_plan(writer.ignore_rules(cfg), now[0]))
        return builds[-1]

    pages = read_only_store(url)
    app = WebApp(cfg, pages, BasicAuth(None), now=lambda: now[0])
    app.rebuild = rebuild

    def counted(q: dict[str, str]) -> list[Any]:
        every = writer.finding_actions(app._query(q), rules=writer.ignore_rules(cfg),
                                       now=now[0])
        return plain(every[:ACTIONS])

    def served(q: dict[str, str]) -> bool:
        """From the materialised plan, not counted here (a repository's is counted)."""
        return pages.planned_actions(app._query(q), rules=pages.ignore_rules(cfg),
                                     now=now[0]) is not None

    app.warm()  # after a run: counted once, every filter read from it
    assert len(builds) == 1
    for q in FILTERS:
        assert served(q) or "repository" in q
        assert plain(app.plan(app._query(q))[0]) == counted(q), q
    assert len(builds) == 1
    app.page_size = 2  # a page of two actions: the few of these reports on several pages
    for q in ({}, {"severity": "Medium"}, {"repository": "app-03"}):
        every = writer.finding_actions(app._query(q), rules=writer.ignore_rules(cfg), now=now[0])
        assert len(every) > app.page_size, (q, len(every))
        assert [(r.package, r.installed_version) for r in every] == paged(app, q), q
    beyond = app.respond("GET", "/fix?page=99", {})
    assert beyond.status == 404 and b"no page 99 of Fix first: 7 actions" in beyond.body
    for bad in ("abc", "0", "-1"):
        page = app.respond("GET", f"/fix?page={bad}", {})
        assert page.status == 404 and b"page must be a whole number from 1" in page.body
    app.page_size = ACTIONS
    assert len(builds) == 1
    assert b"CVE-2019-1559" not in app.respond("GET", "/fix", {}).body  # the rule hides it

    # A new scan: stale until counted again, which the first request does.
    rescan(writer, trivy_fixtures, at(0.5))
    assert not served({"severity": "Medium"})
    medium = {"severity": "Medium"}
    assert plain(app.plan(app._query(medium))[0]) == counted(medium)
    assert len(builds) == 2 and all(served(q) or "repository" in q for q in FILTERS)

    assert b">bash<" in app.respond("GET", "/fix?fixable=no", {}).body and len(builds) == 2

    # An ignore rule added: stale (other rules), and the page hides what it names.
    writer.add_ignore(IgnoreConfig("vendor says unused", at(0).date() + timedelta(days=30),
                                   package="bash"), "test", at(0.5))
    assert not served({"fixable": "no"})
    page = app.respond("GET", "/fix?fixable=no", {})
    assert page.status == 200 and b">bash<" not in page.body
    assert plain(app.plan(app._query({"fixable": "no"}))[0]) == counted({"fixable": "no"})
    assert len(builds) == 3

    # The day after the config rule's last day: it hides nothing, and the page says so.
    now[0] = at(2)
    assert not served({})
    assert b"CVE-2019-1559" in app.respond("GET", "/fix", {}).body
    assert plain(app.plan(app._query({}))[0]) == counted({})
    assert len(builds) == 4
    # A day that changes no rule's answer counts nothing anew.
    now[0] = at(3)
    assert served({}) and app.respond("GET", "/fix", {}).status == 200 and len(builds) == 4
    writer.close()
    pages.close()
