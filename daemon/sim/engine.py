"""Scans as Harbor runs them: a job service of N workers, each holding a scan job for its whole
life, in front of a Trivy adapter that scans ``scanner_concurrency`` artifacts at a time.

Pending (queued for a job worker) → Running (a worker polls the adapter; ``complete_percent``
moves while the adapter works on it) → Success or Error; a stop makes it Stopped.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable

from daemon.sim.inventory import Artifact, Inventory, Scan
from daemon.sim.options import SimOptions
from daemon.sim.vulndb import stable_seed

ERROR_REASONS = (
    "scan job: trivy: image scan failed: unable to initialize a scanner: "
    "unable to find the specified image",
    "scan job: check scan report with mime type application/vnd.security.vulnerability.report; "
    "version=1.1: adapter returned 500: running trivy wrapper: exit status 1",
    "scan job: trivy: failed to download vulnerability DB: context deadline exceeded",
)


class ScanError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ScanEngine:
    def __init__(self, options: SimOptions, inventory: Inventory, lock: threading.RLock,
                 wall: Callable[[], float], on_change: Callable[[], None]) -> None:
        self.options = options
        self.inventory = inventory
        self.lock = lock
        self.wall = wall
        self.on_change = on_change
        self.rng = random.Random(stable_seed(options.seed, "engine"))
        self.pending: deque[tuple[Artifact, Scan]] = deque()
        self.waiting: deque[tuple[Artifact, Scan]] = deque()  # holding a worker, adapter busy
        self.active: list[tuple[Artifact, Scan]] = []
        self.adapter_up = True
        self.on_pull: Callable[[Artifact], None] = lambda art: None  # the scanner's pull
        self.last_scan_end = 0.0
        self.peak_queued = 0  # the most scans waiting for the adapter at once since the reset
        self.finished = 0
        # Told of every scan that ends (Success, Error or Stopped), with the lock held.
        self.on_scan_end: Callable[[Artifact, Scan], None] | None = None
        self._wake = threading.Condition(lock)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sim-scan-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._thread.join(timeout=5)

    # ---- requests (call with the lock held) ---------------------------------------------------
    def scannable(self, art: Artifact) -> bool:
        if not self.adapter_up or art.type != "IMAGE":
            return False
        return True if not art.children else any(self.scannable(c) for c in art.children)

    def trigger(self, art: Artifact) -> list[Scan]:
        if not self.scannable(art):
            raise ScanError(400, "BAD_REQUEST",
                            "the configured scanner Trivy does not support scanning artifact "
                            f"with mime type {art.manifest_media_type}" if self.adapter_up else
                            "failed to get scanner metadata: the scanner adapter is unreachable")
        targets = [c for c in art.children if self.scannable(c)] or [art]
        free = [t for t in targets if not (t.scan and t.scan.status in ("Pending", "Running"))]
        if not free:
            raise ScanError(409, "CONFLICT", "a previous scan process is Running")
        now_mono = time.monotonic()
        scans = []
        for target in free:
            # A rescan deletes the previous report at once (Harbor's MakePlaceHolder).
            scan = Scan(self.inventory.new_report_id(), "Pending", self.wall(),
                        queued_mono=now_mono, fail=self.rng.random() < self.options.error_share,
                        scanner_version=target.scanner_version)
            scan.log.append(f"{_stamp(self.wall())} [INFO] scan job queued for "
                            f"{target.repo.name}@{target.digest}")
            target.scan = scan
            target.touch()
            self.pending.append((target, scan))
            scans.append(scan)
        self._advance(now_mono)
        self.on_change()
        self._wake.notify_all()
        return scans

    def stop_scan(self, art: Artifact) -> None:
        targets = art.children or [art]
        if not any(t.scan for t in targets):
            raise ScanError(400, "BAD_REQUEST", f"no scan job for artifact digest={art.digest}")
        for target in targets:
            scan = target.scan
            if scan is None or scan.status not in ("Pending", "Running"):
                continue
            for queue in (self.pending, self.waiting):
                if (target, scan) in queue:
                    queue.remove((target, scan))
            if (target, scan) in self.active:
                self.active.remove((target, scan))
            scan.status, scan.end_wall = "Stopped", self.wall()
            scan.log.append(f"{_stamp(scan.end_wall)} [INFO] scan job stopped")
            target.touch()
            if self.on_scan_end is not None:
                self.on_scan_end(target, scan)
        self._advance(time.monotonic())
        self.on_change()
        self._wake.notify_all()

    def reset_queue_stats(self) -> None:
        with self.lock:
            self.peak_queued = len(self.pending) + len(self.waiting)
            self.finished = 0

    def set_adapter(self, up: bool) -> None:
        self.adapter_up = up
        self._wake.notify_all()

    # ---- the engine thread ----------------------------------------------------------------------
    def _advance(self, now: float) -> float | None:
        """Move every scan as far as ``now`` allows; return when something next changes."""
        o = self.options
        changed = False
        progress = False
        while True:
            moved = False
            for pair in list(self.active):
                art, scan = pair
                if scan.adapter_end is not None and now >= scan.adapter_end:
                    self.active.remove(pair)
                    self._finish(art, scan)
                    moved = True
            while self.pending and len(self.waiting) + len(self.active) < o.job_workers:
                art, scan = self.pending.popleft()
                scan.status = "Running"
                scan.log.append(f"{_stamp(self.wall())} [INFO] scan job started, "
                                "submitting to the scanner adapter")
                self.waiting.append((art, scan))
                art.touch()
                moved = True
            while self.waiting and len(self.active) < o.scanner_concurrency and self.adapter_up:
                art, scan = self.waiting.popleft()
                scan.adapter_start, scan.adapter_end = now, now + o.scan_seconds
                self.active.append((art, scan))
                if not o.scanner_skip_update_pulltime:
                    self.on_pull(art)  # the adapter pulls the image with the scan's robot
                moved = True
            if not moved:
                break
            changed = True
        self.peak_queued = max(self.peak_queued, len(self.pending) + len(self.waiting))
        next_at: float | None = None
        for art, scan in self.active:
            assert scan.adapter_start is not None and scan.adapter_end is not None
            span = max(o.scan_seconds, 1e-6)
            percent = min(99, int((now - scan.adapter_start) / span * 10) * 10)
            if percent != scan.percent:
                scan.percent = percent
                art.touch()
                progress = True
            step = scan.adapter_start + span * (percent + 10) / 100
            candidates = (scan.adapter_end, step if step < scan.adapter_end else scan.adapter_end)
            nearest = min(candidates)
            next_at = nearest if next_at is None else min(next_at, nearest)
        if changed or progress:
            self.on_change()
        return next_at

    def _finish(self, art: Artifact, scan: Scan) -> None:
        self.finished += 1
        end = max(self.wall(), self.last_scan_end + 0.001)
        self.last_scan_end = end
        scan.end_wall = end
        scan.percent = 100
        if scan.fail:
            scan.status = "Error"
            scan.log.append(f"{_stamp(end)} [ERROR] {self.rng.choice(ERROR_REASONS)}")
        else:
            scan.status = "Success"
            scan.items = self.inventory.items_for(art)
            scan.log.append(f"{_stamp(end)} [INFO] report stored: "
                            f"{len(scan.items)} vulnerabilities")
        art.touch()
        if self.on_scan_end is not None:
            self.on_scan_end(art, scan)

    def _run(self) -> None:
        with self._wake:
            while not self._stopping:
                next_at = self._advance(time.monotonic())
                timeout = None if next_at is None else max(0.0, next_at - time.monotonic()) + 0.001
                self._wake.wait(timeout=timeout if timeout is not None else 1.0)


def _stamp(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
