"""The daemon as a real process, for tests/service/test_daemon_*.py.

As a script it is ``scanwatch`` (``daemon.cli.main``) with the two seams a subprocess needs::

    python daemon_driver.py [--travel ISO8601] [--slack-base URL] -- run --config PATH

``--travel`` runs the process under ``time_machine.travel(at, tick=True)`` (the clock starts at
``at`` and moves on in real time), so a cron of ``* * * * *`` fires two seconds after start
instead of a minute later; ``--slack-base`` points apprise's Slack plugin at a local webhook
(``NotifySlack.webhook_url``), so the real Slack payloads go to a server on 127.0.0.1.

As a module it is the harness the tests drive the process with (:class:`DaemonProcess`): a
bound ``NOTIFY_SOCKET`` of its own, stderr read as structlog JSON events, and waits that poll a
condition with a generous timeout, never a fixed sleep.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
WAIT = 60.0  # seconds to wait for an event before a test fails: generous for a loaded machine


PRELOAD = ("apprise", "daemon.config", "daemon.service.daemon", "daemon.service.cycle",
           "daemon.service.http", "daemon.scan.run", "daemon.store.db", "daemon.alerts.outbox",
           "daemon.alerts.deliver")


def _driver_main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--travel", default="")
    parser.add_argument("--slack-base", default="")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if args.slack_base:
        from apprise.plugins.slack import NotifySlack

        NotifySlack.webhook_url = args.slack_base
    from daemon.cli import main

    if not args.travel:
        return main(rest)
    from datetime import datetime

    import time_machine

    # Import what `run` imports before the clock is set: the travel target is a few seconds
    # before a cron fire time, and the imports must not eat that lead on a loaded machine.
    for module in PRELOAD:
        importlib.import_module(module)

    with time_machine.travel(datetime.fromisoformat(args.travel), tick=True):
        return main(rest)


# ---- the harness ------------------------------------------------------------------------------


def scanwatch_command() -> list[str]:
    script = Path(sys.executable).with_name("scanwatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "daemon"]


def driver_command(*, travel: str = "", slack_base: str = "") -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve())]
    if travel:
        cmd += ["--travel", travel]
    if slack_base:
        cmd += ["--slack-base", slack_base]
    return [*cmd, "--"]


class DaemonProcess:
    """``command + args`` as a subprocess with its own notify socket; stop it with a signal."""

    def __init__(self, command: list[str], args: list[str], workdir: Path,
                 env: dict[str, str] | None = None, watchdog_usec: int | None = None,
                 notify: bool = True) -> None:
        self.lines: list[str] = []  # every stderr line
        self.events: list[dict[str, Any]] = []  # the lines that are JSON log events
        self.notices: list[str] = []  # every line received on NOTIFY_SOCKET
        self.stdout = ""
        self._lock = threading.Lock()
        self.sock: socket.socket | None = None
        self._finished = False
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                                 "JOURNAL_STREAM")}
        full_env.update(env or {})
        if notify:
            path = workdir / "notify.sock"
            if path.exists():
                path.unlink()
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(str(path))
            self.sock.settimeout(0.2)
            full_env["NOTIFY_SOCKET"] = str(path)
        if watchdog_usec is not None:
            full_env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.proc = subprocess.Popen([*command, *args], cwd=workdir, env=full_env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._threads = [threading.Thread(target=self._read_stderr, daemon=True)]
        if self.sock is not None:
            self._threads.append(threading.Thread(target=self._read_notify, daemon=True))
        for t in self._threads:
            t.start()

    # readers
    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            event = None
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
            with self._lock:
                self.lines.append(line)
                if isinstance(event, dict):
                    self.events.append(event)

    def _read_notify(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                if self.proc.poll() is not None:
                    return
                continue
            except OSError:
                return
            with self._lock:
                self.notices.extend(data.decode().split("\n"))

    # waits
    def wait_until(self, condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.log_tail()}")
            time.sleep(0.05)

    def logged(self, event: str, **match: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("event") == event
                    and all(e.get(k) == v for k, v in match.items())]

    def wait_for_event(self, event: str, timeout: float = WAIT, *, after: int = 0,
                       **match: Any) -> dict[str, Any]:
        """The first ``event`` (with ``match``ing fields) beyond the first ``after`` of them."""
        found = self.wait_until(lambda: self.logged(event, **match)[after:],
                                f"log event {event} {match or ''}", timeout)
        return found[0]  # type: ignore[no-any-return]

    def notified(self, prefix: str) -> list[str]:
        with self._lock:
            return [n for n in self.notices if n.startswith(prefix)]

    def wait_for_notice(self, predicate: Callable[[str], bool], what: str,
                        timeout: float = WAIT) -> str:
        def match() -> str | None:
            with self._lock:
                return next((n for n in self.notices if predicate(n)), None)
        return self.wait_until(match, f"notify line {what}", timeout)  # type: ignore[no-any-return]

    def log_tail(self, n: int = 40) -> str:
        with self._lock:
            return "\n".join(self.lines[-n:])

    # ends
    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = WAIT) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout} s\n{self.log_tail()}") from None
        self._finish()
        return code

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        for t in self._threads:
            t.join(timeout=5)
        if self.proc.stdout is not None:
            self.stdout = self.proc.stdout.read()
            self.proc.stdout.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def close(self) -> None:
        """SIGKILL if still running (a test that failed half-way), then release everything."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
        self._finish()


if __name__ == "__main__":
    raise SystemExit(_driver_main(sys.argv[1:]))
