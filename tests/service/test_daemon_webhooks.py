"""The daemon process with its webhook endpoint, the simulator's real events (sent to it through
a webhook policy) and a Slack webhook on 127.0.0.1: a push is alerted without the cron sweep,
and a replayed event alerts nothing again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
from daemon_driver import DaemonProcess, driver_command, scanwatch_command
from test_daemon_e2e import SlackHook, slack  # noqa: F401 (the fixture)

SECRET = "Bearer hook-7a1c9e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, sim: Any, db: Path, port: int) -> Path:
    path.write_text(f"""\
[daemon]
database = "sqlite:///{db}"
listen = "127.0.0.1:{port}"
stop_timeout = "5s"

[[registry]]
name = "sim"
url = "{sim.url}"
username = "{sim.admin[0]}"
password = "${{SCANWATCH_TEST_SIM_PASSWORD}}"
webhook_secret = "${{SCANWATCH_TEST_HOOK}}"
requests_per_second = 200.0
burst = 50

[[schedule]]
name = "yearly"
cron = "0 3 1 1 *"
registries = ["sim"]
on_missed = "skip"

[[receiver]]
name = "secops-slack"
urls = ["${{SCANWATCH_TEST_SLACK_URL}}"]

[[route]]
receivers = ["secops-slack"]
min_severity = "Low"
events = ["new"]
""")
    return path


def test_a_push_is_alerted_through_webhooks_once_without_the_sweep(
        tmp_path: Path, make_sim: Any, slack: SlackHook) -> None:  # noqa: F811
    sim = make_sim(seed=5, projects=1, repositories_per_project=1, artifacts_per_repository=1,
                   scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.2,
                   vulnerabilities_per_artifact=30)
    port = free_port()
    config = write_config(tmp_path / "config.toml", sim, tmp_path / "w.db", port)
    env = {"SCANWATCH_TEST_SIM_PASSWORD": sim.admin[1], "SCANWATCH_TEST_HOOK": SECRET,
           "SCANWATCH_TEST_SLACK_URL": "slack://TA1/BB2/CC3/?image=no&footer=no"}
    # A first sweep: the first sight of a registry is recorded quietly, as in production.
    first = subprocess.run([*scanwatch_command(), "run", "--once", "--config", str(config)],
                           env={**os.environ, **env}, cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    d = DaemonProcess(driver_command(slack_base=f"http://127.0.0.1:{slack.port}/services"),
                      ["run", "--config", str(config)], tmp_path, env=env)
    try:
        d.wait_for_event("daemon_ready")
        project = next(iter(sim.robots))
        hook = f"http://127.0.0.1:{port}/hooks/harbor/sim"
        policy = {"name": "scanwatch", "enabled": True,
                  "event_types": ["PUSH_ARTIFACT", "SCANNING_COMPLETED"],
                  "targets": [{"type": "http", "address": hook, "auth_header": SECRET}]}
        httpx.post(f"{sim.url}/api/v2.0/projects/{project}/webhook/policies", json=policy,
                   auth=sim.admin).raise_for_status()
        # New CVEs in the scanner's DB: only the pushed image's scan (the fast path) shows them.
        sim.control.db_update(added=0.5, fix_released=0.0)
        pushed = sim.control.push(project=project)
        d.wait_until(lambda: slack.posts, "an alert at the Slack webhook")
        d.wait_for_event("alerts_delivered")
        assert any(pushed["repository"] in text for text in slack.texts())
        assert d.logged("webhook_run", registry="sim")
        assert not d.logged("run_started", schedule="yearly")
        delivered = len(slack.posts)
        runs = len(d.logged("run_finished"))
        # The same push again, as Harbor retries it: a small run that records and alerts nothing.
        sent = [e for p in sim.state.webhooks.policies for e in p.executions]
        replay = httpx.post(hook, content=sent[0]["extra_attrs"]["payload"],
                            headers={"Authorization": SECRET})
        assert replay.status_code == 202
        d.wait_until(lambda: len(d.logged("run_finished")) > runs, "the replayed event's run")
        forged = httpx.post(hook, content=sent[0]["extra_attrs"]["payload"],
                            headers={"Authorization": "Bearer guess"})
        assert forged.status_code == 401
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'scanwatch_webhook_events_total{registry="sim",result="unauthorized"} 1.0' \
            in metrics
        d.signal(signal.SIGTERM)
        assert d.wait_exit() == 0, d.log_tail()
        assert len(slack.posts) == delivered
        assert SECRET not in "\n".join(d.lines)
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
