"""Benchmark: push → alert delivered through Harbor's webhooks, against the scan time floor.

The simulator (scan time 2 s, an adapter of 4 workers) sends its real webhook events to the
daemon (``scanwatch run`` as a real process, with its listener on 127.0.0.1) through a policy
made by ``scanwatch webhook setup``. The scanner's DB gains CVEs, then N images are pushed,
one per repository, ``--interval`` seconds apart; each push is timed to the first Slack POST
(apprise's real Slack payload, at a local endpoint) naming its repository. The cron sweep is
configured but not due (yearly): without the fast path the alert would wait for it.

Reference, measured in the same run: the simulator's scan time for each pushed image (trigger
to report), the floor no receiver can beat. Target (issue #17): p95 ≤ 10 s with a 2 s scan.
Prints p50/p95 and, last, the ratio p95 / p95 of the floor.

    .venv/bin/python bench/webhook.py [--images 10] [--interval 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon import log  # noqa: E402
from daemon.sim import SimOptions, start_simulator  # noqa: E402

DRIVER = ROOT / "tests" / "service" / "daemon_driver.py"
SECRET = "Bearer bench-hook-3f9a"


class SlackEndpoint:
    """A Slack incoming webhook on 127.0.0.1: each POST's arrival time and text."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = " ".join(str(a.get("title", "")) + " " + str(a.get("text", ""))
                                for a in body.get("attachments", [])) or str(body.get("text"))
                outer.posts.append((time.time(), text))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(sim: Any, db: Path, port: int) -> str:
    return f"""\
[daemon]
database = "sqlite:///{db}"
listen = "127.0.0.1:{port}"
stop_timeout = "5s"

[[registry]]
name = "sim"
url = "{sim.url}"
username = "admin"
password = "${{BENCH_SIM_PASSWORD}}"
webhook_secret = "${{BENCH_HOOK}}"
requests_per_second = 50.0
burst = 20
max_scans_in_flight = 8

[[schedule]]
name = "nightly"
cron = "0 3 1 1 *"
registries = ["sim"]
on_missed = "skip"

[[receiver]]
name = "slack"
urls = ["slack://TA1/BB2/CC3/?image=no&footer=no"]

[[route]]
receivers = ["slack"]
min_severity = "Low"
events = ["new"]
"""


def wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench/webhook.py: timed out waiting for {what}")
        time.sleep(0.05)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--scan-seconds", type=float, default=2.0)
    args = parser.parse_args()
    log.configure("warning")
    options = SimOptions(seed=17, projects=1, repositories_per_project=args.images,
                         artifacts_per_repository=1, scanned_share=1.0, index_share=0.0,
                         chart_share=0.0, vulnerabilities_per_artifact=30,
                         scan_seconds=args.scan_seconds, scanner_concurrency=4)
    slack = SlackEndpoint()
    with start_simulator(options) as sim, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = Path(tmp) / "config.toml"
        config.write_text(config_text(sim, Path(tmp) / "bench.db", port))
        env = {**os.environ, "BENCH_SIM_PASSWORD": sim.admin[1], "BENCH_HOOK": SECRET}
        env.pop("NOTIFY_SOCKET", None)
        driver = [sys.executable, str(DRIVER), "--slack-base",
                  f"http://127.0.0.1:{slack.port}/services", "--"]
        first = subprocess.run([*driver, "run", "--once", "--config", str(config),
                                "--log-level", "warning"], env=env, capture_output=True,
                               text=True, timeout=300)
        if first.returncode != 0:
            raise SystemExit(f"first sweep failed: {first.stderr[-1000:]}")
        hook = f"http://127.0.0.1:{port}/hooks/harbor/sim"
        subprocess.run([*driver, "webhook", "setup", "sim", "--url", hook, "--config",
                        str(config)], env=env, check=True, capture_output=True, timeout=120)
        daemon = subprocess.Popen([*driver, "run", "--config", str(config), "--log-level",
                                   "warning"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait(lambda: _up(port), 60, "the daemon's listener")
            sim.control.db_update(added=0.5, fix_released=0.0)
            project = sim.state.inventory.projects[0]
            pushes: list[tuple[str, float, Any]] = []
            for repo in project.repositories[:args.images]:
                at = time.time()
                pushed = sim.control.push(project=project.name, repository=repo.short)
                art = next(a for a in repo.artifacts if a.digest == pushed["digest"])
                pushes.append((pushed["repository"], at, art))
                time.sleep(args.interval)

            def alerted(name: str) -> float | None:
                return next((t for t, text in slack.posts if name in text), None)

            wait(lambda: all(alerted(n) is not None for n, _, _ in pushes), 120,
                 "an alert for every push")
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
        latency = [alerted(n) - at for n, at, _ in pushes]  # type: ignore[operator]
        floor = [a.scan.end_wall - a.scan.start_wall for _, _, a in pushes if a.scan]
    print(f"{len(pushes)} pushes, {args.interval:g} s apart, scan time {args.scan_seconds:g} s, "
          f"{len(slack.posts)} Slack messages")
    print(f"push -> alert delivered: p50 {statistics.median(latency):.2f} s, "
          f"p95 {pct(latency, 95):.2f} s, max {max(latency):.2f} s (target p95 <= 10 s: "
          f"{'met' if pct(latency, 95) <= 10 else 'MISSED'})")
    print(f"floor (trigger -> report, as the simulator ran it): p50 "
          f"{statistics.median(floor):.2f} s, p95 {pct(floor, 95):.2f} s")
    print("without webhooks: the next sweep (yearly here; nightly in most setups)")
    print(f"ratio (p95 push->alert / p95 scan floor): {pct(latency, 95) / pct(floor, 95):.2f}")
    return 0


def _up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
