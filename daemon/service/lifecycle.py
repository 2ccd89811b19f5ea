"""The daemon's life under systemd: sd_notify, the watchdog, and signals.

``READY=1`` once the config is loaded and the database opened; ``STATUS=`` lines as runs start
and end; ``WATCHDOG=1`` at half of ``WATCHDOG_USEC``, sent from the event loop itself so that a
hung loop stops it and systemd restarts the service; SIGTERM/SIGINT → ``STOPPING=1`` and a
graceful stop (no new scan; those in flight followed up to ``stop_timeout``); SIGHUP → reload.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable

from daemon import log
from daemon.scan.stop import StopRequest

logger = log.get(__name__)


def sd_notify(*lines: str) -> bool:
    """Send lines to ``$NOTIFY_SOCKET`` (path or abstract); False when not under systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr[0] == "@":
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall("\n".join(lines).encode())
    except OSError as exc:
        logger.warning("sd_notify_failed", error=str(exc))
        return False
    return True


def watchdog_interval() -> float | None:
    """Half of ``WATCHDOG_USEC`` in seconds, when the watchdog is on and meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 2_000_000, 0.05)
    except ValueError:
        return None


async def watchdog_loop(interval: float) -> None:
    """Pet the watchdog from the loop: if the loop hangs, the pets stop and systemd acts."""
    while True:
        sd_notify("WATCHDOG=1")
        await asyncio.sleep(interval)


class Signals:
    """SIGTERM and SIGINT request ``stop`` (with ``grace()`` seconds to follow what runs; a
    second one ends the following at once); SIGHUP calls ``on_reload`` when given. The handlers
    run on the loop, so the request is made before any task of the loop runs again: a scan
    queue cannot slip in another trigger between the signal and the request."""

    def __init__(self, grace: Callable[[], float],
                 on_reload: Callable[[], None] | None = None) -> None:
        self.stop = StopRequest()
        self._grace = grace
        self._on_reload = on_reload

    @property
    def signal_name(self) -> str:
        return self.stop.reason

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop, sig)
        if self._on_reload is not None:
            loop.add_signal_handler(signal.SIGHUP, self._on_reload)

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)

    def _stop(self, sig: signal.Signals) -> None:
        grace = self._grace()
        if not self.stop.request(grace, sig.name):
            logger.warning("stopping_now", signal=sig.name,
                           note="a second signal: scans in flight are left to Harbor now")
            return
        logger.info("stopping", signal=sig.name, follow_for=grace)
        sd_notify("STOPPING=1", "STATUS=stopping")
