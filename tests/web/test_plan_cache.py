"""The "Fix first" plan is computed once per state of history (issue 18: the whole registry's
plan costs seconds on a large one): asked again, it comes from memory; a new scan, a new ignore
rule or the next day computes it again, and the page shows the new state. Real SQLite file,
real Trivy reports, the pages' read-only store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from daemon.config import load
from daemon.harbor.reports import load_report_file
from daemon.model import ScannerInfo, ScanResult, ScanState
from daemon.store.db import open_store
from daemon.store.pages import read_only_store
from daemon.web.app import WebApp
from daemon.web.auth import BasicAuth
from tests.store.store_helpers import at, ref
from tests.store.test_actions_counted import plain, seed


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
    assert first and app.plan(query) is first  # from memory
    assert app.plan(app._query({"severity": "Critical"})) is not first  # another filter

    # New scans (app-00's two debian images now report alpine's packages): computed again.
    writer = open_store(url)
    for digest in ("sha256:00a", "sha256:00b"):
        writer.record_scan(ScanResult(
            ref(digest, repository="app-00"), ScanState.SUCCESS, f"rep-new-{digest}", "manual",
            started_at=at(1), finished_at=at(1), scanner=ScannerInfo("Trivy", "", "0.58"),
            scanner_db_updated_at=at(1), report=load_report_file(
                trivy_fixtures / "alpine-310.json.golden")), at(1))
    writer.close()
    second = app.plan(query)
    assert second is not first and app.plan(query) is second
    assert plain(second) != plain(first)  # the new reports' findings are in it
    page = app.respond("GET", "/fix", {})
    assert page.status == 200
    assert all(r.package.encode() in page.body for r in second[:5])

    # A stored ignore rule: computed again, and it hides what it names.
    writer = open_store(url)
    from daemon.config_types import IgnoreConfig
    package = second[0].package
    writer.add_ignore(IgnoreConfig("accepted", at(0).date() + timedelta(days=9),
                                   package=package), "test", at(1))
    writer.close()
    third = app.plan(query)
    assert third is not second and package not in {r.package for r in third}

    # The next day (a rule may have expired): computed again.
    now[0] = at(1)
    assert app.plan(query) is not third
