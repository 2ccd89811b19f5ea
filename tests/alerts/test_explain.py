"""`scanwatch alerts preview --explain`: why each change is or is not in a message, from the
command line as a user runs it, over a real SQLite store."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

from alertkit import seeded_store
from runkit import SCANWATCH, TIMEOUT

from daemon.alerts.deliver import deliver_pending
from daemon.alerts.group import RunContext
from daemon.alerts.outbox import build_and_queue
from daemon.config import load
from tests.store.store_helpers import at

NOW = at(1) + timedelta(minutes=10)


def write_config(tmp_path: Path, port: int) -> Path:
    """A Critical route without continue, then a Medium route for mail, and an ignore rule for
    one CVE."""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
database = "sqlite:///{tmp_path / 'h.db'}"

[[receiver]]
name = "secops"
urls = ["json://127.0.0.1:{port}/hook"]

[[receiver]]
name = "mail"
urls = ["json://127.0.0.1:{port}/mail"]

[[route]]
name = "critical"
receivers = ["secops"]
min_severity = "Critical"
events = ["new", "scan_failed"]

[[route]]
name = "medium"
receivers = ["mail"]
min_severity = "Medium"
events = ["new"]

[[ignore]]
vulnerability = "CVE-2026-0001"
reason = "not reachable in our build"
expires = "2099-01-01"
""")
    return path


def explain(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCANWATCH, "alerts", "preview", "--explain", *extra, "--config",
                           str(config)], capture_output=True, text=True, timeout=TIMEOUT)


def test_it_says_which_route_took_each_change_and_why_the_others_did_not(tmp_path: Path,
                                                                        hook) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, hook.port)
    seeded_store(f"sqlite:///{tmp_path / 'h.db'}").close()
    result = explain(config)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.split("\n[")[0] == "\n".join([
        "first sight of 1 finding in payments/api: new (first_sight), High  [event 1]",
        "  silence: no ignore rule matches",
        "  route 1 critical: does not take it: severity High below min_severity Critical",
        "  route 2 medium: takes it -> mail",
        "  mail: would send (new)",
        "CVE-2026-0000 openssl in payments/api: new (advisory_published), Critical  [event 2]",
        "  silence: no ignore rule matches",
        "  route 1 critical: takes it -> secops",
        "  secops: would send (new)",
        "  route 2 medium: not tried: route 1 critical has no continue",
        "CVE-2026-0001 openssl in payments/api: new (advisory_published), Critical  [event 3]",
        "  silence: silenced: not reachable in our build (ignored until 2099-01-01)",
        "scan_failed in payments/api  [scan 3]",
        "  silence: no ignore rule matches",
        "  route 1 critical: takes it -> secops",
        "  secops: would send (new)",
        "  route 2 medium: not tried: route 1 critical has no continue",
        ""])
    doc = json.loads(explain(config, "--format", "json").stdout)
    by_item = {e["item"].split(" in ")[0]: e for e in doc}
    assert by_item["CVE-2026-0000 openssl"]["sent_to"] == ["secops"]
    assert by_item["CVE-2026-0001 openssl"]["sent_to"] == []
    assert [s["stage"] for s in by_item["CVE-2026-0001 openssl"]["steps"]] == ["silence"]


async def test_it_says_a_change_already_told_is_not_sent_again(tmp_path: Path, hook) -> None:  # type: ignore[no-untyped-def]
    config_path = write_config(tmp_path, hook.port)
    store = seeded_store(f"sqlite:///{tmp_path / 'h.db'}")
    config = load(config_path, strict=False)
    build_and_queue(store, config, run_context=RunContext(name="nightly"), now=NOW)
    await deliver_pending(store, config, now_fn=lambda: NOW)
    store.close()
    result = explain(config_path, "--since", "3000d")
    assert result.returncode == 0, result.stderr
    assert "  secops: told already (notification log, last " in result.stdout


def _routes():  # type: ignore[no-untyped-def]
    from daemon.config_types import RouteConfig
    from daemon.model import Severity

    return [
        RouteConfig(("pager",), name="exploited", kev=True, min_severity=Severity.LOW),
        RouteConfig(("secops",), name="critical", min_severity=Severity.CRITICAL,
                    continue_=True),
        RouteConfig(("mail", "secops"), name="rest", min_severity=Severity.MEDIUM,
                    projects=("payments",)),
        RouteConfig(("late",), name="late", min_epss=0.5, min_severity=Severity.LOW),
    ]


def test_explain_routes_each_item_as_the_outbox_does() -> None:
    """The receivers --explain says an item reaches are the ones ``route_items`` gives it,
    whatever the route (globs, thresholds, continue, KEV and EPSS), and each route that did
    not take it says why."""
    from alertkit import event

    from daemon.alerts.events import Item
    from daemon.alerts.explain import explain
    from daemon.alerts.route import route_items
    from daemon.ignores import NO_RULES
    from daemon.model import ExploitInfo, Severity

    exploit = {"CVE-2026-0001": ExploitInfo(kev=True, epss=0.9),
               "CVE-2026-0002": ExploitInfo(epss=0.7)}
    items = [Item(event("CVE-2026-0001", severity=Severity.HIGH), "event", 1),
             Item(event("CVE-2026-0002", severity=Severity.CRITICAL), "event", 2),
             Item(event("CVE-2026-0003", severity=Severity.MEDIUM, project="web"), "event", 3),
             Item(event("CVE-2026-0004", severity=Severity.HIGH), "event", 4)]
    routes = _routes()
    found = explain(items, routes, rules=NO_RULES, notified={}, cursors={},
                    quiet=frozenset(), now=NOW, exploit=exploit)
    for origin, e in zip(items, found, strict=True):
        assert list(e.sent_to) == [d.receiver for d in route_items([origin], routes, exploit)]
    says = {e.item.split(" ")[0]: dict(e.steps) for e in found}
    assert says["CVE-2026-0001"]["route 1 exploited"] == "takes it -> pager"
    assert says["CVE-2026-0001"]["route 4 late"] == "not tried: route 1 exploited has no continue"
    assert says["CVE-2026-0002"]["route 1 exploited"] == (
        "does not take it: kev = true: not in CISA KEV")
    assert says["CVE-2026-0002"]["route 3 rest"] == "takes it -> mail, secops"
    assert says["CVE-2026-0002"]["secops"] == "already reached by an earlier route"
    assert says["CVE-2026-0003"]["route 3 rest"] == (
        "does not take it: project web not in ['payments']")
    assert says["CVE-2026-0003"]["route 4 late"] == (
        "does not take it: EPSS unscored below min_epss 0.5")
    assert list(dict.fromkeys(found[1].sent_to)) == ["secops", "mail"]
