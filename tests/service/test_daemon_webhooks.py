"""The daemon process with its webhook endpoint, the simulator's real events (sent to it through
a webhook policy) and a Slack webhook on 127.0.0.1: a push is alerted without the cron sweep,
and a replayed event alerts nothing again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
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


def write_config(path: Path, sim: Any, db: Path, port: int, schedule: str = "") -> Path:
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
{schedule}

[[receiver]]
name = "secops-slack"
urls = ["${{SCANWATCH_TEST_SLACK_URL}}"]

[[route]]
receivers = ["secops-slack"]
min_severity = "Low"
events = ["new"]
""")
    return path


def first_sweep(tmp_path: Path, sim: Any, schedule: str = ""
                ) -> tuple[Path, dict[str, str], int]:
    """The config (its path), the environment it needs and the listener's port, after a first
    sweep: the first sight of a registry is recorded quietly, as in production."""
    port = free_port()
    config = write_config(tmp_path / "config.toml", sim, tmp_path / "w.db", port, schedule)
    env = {"SCANWATCH_TEST_SIM_PASSWORD": sim.admin[1], "SCANWATCH_TEST_HOOK": SECRET,
           "SCANWATCH_TEST_SLACK_URL": "slack://TA1/BB2/CC3/?image=no&footer=no"}
    first = subprocess.run([*scanwatch_command(), "run", "--once", "--config", str(config)],
                           env={**os.environ, **env}, cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    return config, env, port


def test_a_push_is_alerted_through_webhooks_once_without_the_sweep(
        tmp_path: Path, make_sim: Any, slack: SlackHook) -> None:  # noqa: F811
    sim = make_sim(seed=5, projects=1, repositories_per_project=1, artifacts_per_repository=1,
                   scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.2,
                   vulnerabilities_per_artifact=30)
    config, env, port = first_sweep(tmp_path, sim)
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


def settled(d: DaemonProcess, sim: Any, quiet: float = 1.0) -> Callable[[], bool]:
    """A condition: Harbor has no delivery in progress, every small run the daemon started has
    finished, and nothing changed for ``quiet`` seconds."""
    last: dict[str, Any] = {"state": None, "since": time.monotonic()}

    def check() -> bool:
        executions = [e for p in sim.state.webhooks.policies for e in p.executions]
        state = (len(executions), sum(e["status"] == "Running" for e in executions),
                 len(d.logged("webhook_run")),
                 len([e for e in d.logged("run_finished")
                      if str(e.get("schedule", "")).startswith("webhook:")]))
        if state != last["state"]:
            last.update(state=state, since=time.monotonic())
            return False
        return state[1] == 0 and state[2] == state[3] and (
            time.monotonic() - last["since"] >= quiet)
    return check


def test_lost_webhooks_are_caught_by_the_sweep_and_nothing_is_alerted_twice(
        tmp_path: Path, make_sim: Any, slack: SlackHook) -> None:  # noqa: F811
    sim = make_sim(seed=21, projects=1, repositories_per_project=6, artifacts_per_repository=1,
                   scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.2,
                   vulnerabilities_per_artifact=30, webhook_drop_share=0.5,
                   webhook_retry_delay=0.1)
    # The sweep's lanes for what a webhook can miss (a DB update's rescans are another story:
    # they show new CVEs in the older images of every repository).
    config, env, port = first_sweep(tmp_path, sim, 'select = ["changed", "unscanned", "failed"]')
    full_env = {**os.environ, **env}
    sweep = [*driver_command(slack_base=f"http://127.0.0.1:{slack.port}/services"), "run",
             "--once", "--config", str(config)]
    hook = f"http://127.0.0.1:{port}/hooks/harbor/sim"
    setup = subprocess.run([*scanwatch_command(), "webhook", "setup", "sim", "--url", hook,
                            "--config", str(config)], env=full_env, capture_output=True,
                           text=True, timeout=120)
    assert setup.returncode == 0 and "created" in setup.stdout, setup.stderr
    project = sim.state.inventory.projects[0]
    d = DaemonProcess(driver_command(slack_base=f"http://127.0.0.1:{slack.port}/services"),
                      ["run", "--config", str(config)], tmp_path, env=env)
    try:
        d.wait_for_event("daemon_ready")
        # New CVEs in the scanner's DB: each pushed image's first scan shows them as new.
        sim.control.db_update(added=0.5, fix_released=0.0)
        pushed = []
        for repo in project.repositories[:4]:
            pushed.append(sim.control.push(project=project.name, repository=repo.short))
            d.wait_until(settled(d, sim), "the push's deliveries and small runs")
        executions = [e for p in sim.state.webhooks.policies for e in p.executions]
        lost_push = {json.loads(e["extra_attrs"]["payload"])["event_data"]["repository"][
            "repo_full_name"] for e in executions
            if e["status"] == "Error" and e["extra_attrs"]["event_type"] == "PUSH_ARTIFACT"}
        delivered = {p["repository"] for p in pushed} - lost_push
        assert lost_push and delivered, "seed 21 loses some pushes and delivers others"
        by_webhook = "\n".join(slack.texts())
        assert all(r in by_webhook for r in delivered)
        assert not any(r in by_webhook for r in lost_push)
        d.signal(signal.SIGTERM)
        assert d.wait_exit() == 0, d.log_tail()
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    before = len(slack.posts)
    caught = subprocess.run(sweep, env=full_env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert caught.returncode == 0, caught.stderr[-2000:]
    by_sweep = "\n".join(slack.texts()[before:])
    assert all(r in by_sweep for r in lost_push)  # the sweep catches what the webhooks lost
    assert not any(r in by_sweep for r in delivered)  # and alerts nothing twice
    assert SECRET not in "\n".join(d.lines) + caught.stderr


def test_scan_all_events_without_a_scan_bring_the_rescans_in(
        tmp_path: Path, make_sim: Any, slack: SlackHook) -> None:  # noqa: F811
    sim = make_sim(seed=5, projects=1, repositories_per_project=3, artifacts_per_repository=1,
                   scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.1,
                   vulnerabilities_per_artifact=30)
    config, env, port = first_sweep(tmp_path, sim)
    d = DaemonProcess(driver_command(slack_base=f"http://127.0.0.1:{slack.port}/services"),
                      ["run", "--config", str(config)], tmp_path, env=env)
    try:
        d.wait_for_event("daemon_ready")
        project = sim.state.inventory.projects[0].name
        policy = {"name": "scanwatch", "enabled": True, "event_types": ["SCANNING_COMPLETED"],
                  "targets": [{"type": "http", "address": f"http://127.0.0.1:{port}/hooks/"
                               "harbor/sim", "auth_header": SECRET}]}
        httpx.post(f"{sim.url}/api/v2.0/projects/{project}/webhook/policies", json=policy,
                   auth=sim.admin).raise_for_status()
        sim.control.db_update(added=0.5, fix_released=0.0)
        started = httpx.post(f"{sim.url}/api/v2.0/system/scanAll/schedule", auth=sim.admin,
                             json={"schedule": {"type": "Manual"}})
        assert started.status_code == 201
        d.wait_until(lambda: slack.posts, "the rescans' new CVEs at the Slack webhook")
        d.wait_until(settled(d, sim), "every scan-all event handled")
        sent = [json.loads(e["extra_attrs"]["payload"])
                for p in sim.state.webhooks.policies for e in p.executions]
        assert len(sent) == 3 and all(
            "scan_overview" not in r for e in sent for r in e["event_data"]["resources"])
        assert not d.logged("run_started", schedule="yearly")  # the fast path alone
        d.signal(signal.SIGTERM)
        assert d.wait_exit() == 0, d.log_tail()
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
