"""End to end: the daemon process on cron, the simulator, a real SMTP server and a Slack webhook.

Two cron firings (the daemon runs under time-machine, two seconds before a minute boundary, so
``* * * * *`` fires at once), a scanner DB update between them, and a SIGKILL after the first:
each receiver gets exactly the alerts the changes call for, once.
"""

from __future__ import annotations

import json
import math
import re
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from daemon_driver import DaemonProcess, driver_command
from mailkit import SmtpInbox

from daemon.model import Severity
from daemon.store import outbox as store_outbox
from daemon.store.db import open_store

CVE = re.compile(r"CVE-\d{4}-\d+")
LEAD = 3  # the daemon's clock starts this many seconds before the minute it fires on


class SlackHook:
    """A Slack incoming webhook on 127.0.0.1: records each POST and answers ``ok`` as Slack does."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def texts(self) -> list[str]:
        return [p["attachments"][0]["title"] + "\n" + p["attachments"][0]["text"]
                for _, p in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack() -> Iterator[SlackHook]:
    hook = SlackHook()
    yield hook
    hook.close()


def write_config(path: Path, sim: Any, db: Path, smtp_port: int) -> Path:
    path.write_text(f"""\
[daemon]
database = "sqlite:///{db}"
stop_timeout = "5s"

[[registry]]
name = "sim"
url = "{sim.url}"
username = "{sim.admin[0]}"
password = "${{SCANWATCH_TEST_SIM_PASSWORD}}"
requests_per_second = 200.0
burst = 50
max_concurrent_requests = 8
max_scans_in_flight = 4

[[schedule]]
name = "minutely"
cron = "* * * * *"
registries = ["sim"]
select = ["changed", "unscanned", "failed", "db_updated"]
on_missed = "skip"

[[receiver]]
name = "secops-slack"
urls = ["${{SCANWATCH_TEST_SLACK_URL}}"]

[[receiver]]
name = "secops-mail"
urls = ["mailto://127.0.0.1:{smtp_port}?from=scanwatch@example.org&to=secops@example.org"]

[[route]]
receivers = ["secops-slack", "secops-mail"]
min_severity = "High"
events = ["new", "fix_available"]
""")
    return path


def minute_ceil(moment: datetime) -> datetime:
    return (moment + timedelta(minutes=1)).replace(second=0, microsecond=0)


def expected_ids(changes: dict[str, Any], floor: Severity) -> set[str]:
    """The CVE ids a route of ``floor`` owes after a DB update: the CVEs added and the fixes
    released, at their severity after the update (a rescore may move either)."""
    final: dict[tuple[str, str, str], str] = {}
    for kind in ("added", "fix_released", "rescored"):
        for e in changes[kind]:
            final[(e["id"], e["package"], e["version"])] = e["severity"]
    return {e["id"] for kind in ("added", "fix_released") for e in changes[kind]
            if e["repositories"]
            and Severity.parse(final[(e["id"], e["package"], e["version"])]) >= floor}


def test_two_cron_firings_a_kill_and_a_db_update_alert_each_receiver_exactly_once(
    tmp_path: Path, make_sim: Any, slack: SlackHook, smtp: tuple[SmtpInbox, int],
    request: pytest.FixtureRequest,
) -> None:
    inbox, smtp_port = smtp
    sim = make_sim(seed=13, projects=1, repositories_per_project=2, artifacts_per_repository=2,
                   scanned_share=0.5, index_share=0.0, chart_share=0.0, scan_seconds=0.2,
                   scanner_concurrency=2)
    images = sim.control.inventory()["scannable"]
    db = tmp_path / "h.db"
    config = write_config(tmp_path / "config.toml", sim, db, smtp_port)
    env = {"SCANWATCH_TEST_SIM_PASSWORD": sim.admin[1],
           "SCANWATCH_TEST_SLACK_URL": "slack://TA1/BB2/CC3/?image=no&footer=no"}
    args = ["run", "--config", str(config)]
    slack_base = f"http://127.0.0.1:{slack.port}/services"

    def start(fire_at: datetime) -> DaemonProcess:
        at = (fire_at - timedelta(seconds=LEAD)).isoformat()
        return DaemonProcess(driver_command(travel=at, slack_base=slack_base), args, tmp_path,
                             env=env)

    stores: list[Any] = []  # the history database, opened once the daemon has created it

    def outbox_rows() -> list[Any]:
        return store_outbox.listing(stores[0])

    def wait_ready_before(d: DaemonProcess, fire_at: datetime) -> None:
        ready = d.wait_for_event("daemon_ready")
        at = datetime.fromisoformat(ready["timestamp"].replace("Z", "+00:00"))
        assert at < fire_at, f"the daemon was ready only at {at}, after its fire time {fire_at}"

    def wait_delivered(d: DaemonProcess) -> dict[str, Any]:
        """The run's alerts queued (at the end of its cycle), then every outbox row sent."""
        queued = d.wait_for_event("alerts_queued")
        d.wait_until(lambda: all(r.status == "sent" for r in outbox_rows()),
                     "every queued alert sent")
        return queued

    # First firing: first sight of every repository, reports imported and the rest scanned.
    began = time.monotonic()
    first_fire = minute_ceil(datetime.now(UTC) + timedelta(seconds=LEAD))
    d = start(first_fire)
    try:
        wait_ready_before(d, first_fire)
        run = d.wait_for_event("run_finished", schedule="minutely")
        assert run["ok"] is True
        assert d.logged("run_started", schedule="minutely", trigger="schedule")
        assert not d.logged("config_warning"), d.logged("config_warning")
        stores.append(open_store(f"sqlite:///{db}"))
        request.addfinalizer(stores[0].close)
        wait_delivered(d)
    finally:
        d.signal(signal.SIGKILL)  # no goodbye: the next start finds what the database says
        d.close()
    assert d.proc.returncode == -signal.SIGKILL
    assert sim.control.inventory()["scanned"] == images
    first_rows = outbox_rows()
    assert not [f for r in first_rows for f in r.payload["findings"] if f[-1] == "new"]
    first_texts = slack.texts() + inbox.texts()
    assert len(slack.posts) == sum(r.receiver == "secops-slack" for r in first_rows)
    assert len(inbox.messages) == sum(r.receiver == "secops-mail" for r in first_rows)
    assert not [CVE.findall(t) for t in first_texts if CVE.search(t)], first_texts
    # ...though it recorded findings a route of High would announce, were they not first sight.
    assert any(f.severity >= Severity.HIGH for f in stores[0].open_findings())
    slack_before, mail_before = len(slack.posts), len(inbox.messages)

    changes = sim.control.db_update(added=0.15, fix_released=0.15, rescored=0.05)
    want = expected_ids(changes, Severity.HIGH)
    below = {e["id"] for k in ("added", "fix_released", "rescored") for e in changes[k]} - want
    # Seed 13 gives both sides: CVEs the route owes, and changes under High or only rescored.
    assert want and below, changes

    # Second firing, at a later minute than anything the first process saw.
    elapsed = time.monotonic() - began
    second_fire = first_fire + timedelta(minutes=max(1, math.ceil((elapsed + 2) / 60)))
    d = start(second_fire)
    try:
        wait_ready_before(d, second_fire)
        assert not d.logged("run_resuming")
        run = d.wait_for_event("run_finished", schedule="minutely")
        assert run["ok"] is True and run["events"] > 0
        started = d.logged("run_started", schedule="minutely")
        assert [e["trigger"] for e in started] == ["schedule"]
        assert wait_delivered(d)["messages"] > 0
        d.signal(signal.SIGTERM)
        assert d.wait_exit() == 0, d.log_tail()
    finally:
        d.close()

    rows = outbox_rows()
    second_rows = [r for r in rows if r.id not in {f.id for f in first_rows}]
    assert {r.receiver for r in second_rows} == {"secops-slack", "secops-mail"}
    # Nothing twice: one POST / one mail per outbox row, each message once.
    assert len(slack.posts) == sum(r.receiver == "secops-slack" for r in rows)
    assert len(inbox.messages) == sum(r.receiver == "secops-mail" for r in rows)
    assert len({r.message_id for r in rows}) == len(rows)
    assert all(path == "/services/TA1/BB2/CC3" for path, _ in slack.posts)

    for texts in (slack.texts()[slack_before:], inbox.texts()[mail_before:]):
        named = {cve for text in texts for cve in CVE.findall(text)}
        assert named == want, (sorted(named), sorted(want), changes)
    # What the outbox recorded per finding: a CVE the update added is new (advisory_published,
    # fix or not), a fix released for a CVE seen before is fix_available.
    told = {(f[3], f[5]) for r in second_rows for f in r.payload["findings"]}
    added = {e["id"] for e in changes["added"]}
    released = {e["id"] for e in changes["fix_released"]} - added
    assert told == {(cve, "new" if cve in added else "fix_available") for cve in want}
    assert {cve for cve, _ in told} & released, "no fix_available in this seed"
