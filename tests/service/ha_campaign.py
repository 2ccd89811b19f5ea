"""Three daemons on one PostgreSQL against three simulators, SIGKILLed and SIGSTOPped at random.

Shared by ``tests/service/test_ha_cluster.py`` (a bounded campaign) and ``bench/ha.py`` (a
longer one that prints the figures). What it measures, from outside the daemons:

* take-over: for every unit the victim held when it was killed or stopped, the time until the
  ``lease`` table shows it under a newer epoch and another holder (a sampler polls the table);
* alerts: the Slack posts a real HTTP endpoint received, against the CVEs the simulators'
  scanner DB updates call for (``expected_ids``), and how many posts came twice;
* runs: per schedule, no two recorded runs overlapping in time (two holders of a registry at
  once would overlap), every cron minute of the campaign fired once (``cron_fire``);
* fencing: no fire time finished by a SIGSTOPped instance under the epoch it had lost.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon_driver import DaemonProcess, driver_command
from pgkit import ADMIN_URL, NOT_SET, fresh_database

__all__ = ["ADMIN_URL", "NOT_SET", "fresh_database"]
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from test_daemon_e2e import CVE, SlackHook, expected_ids

from daemon.model import Severity
from daemon.sim import SimOptions, start_simulator

REGISTRIES = ("r0", "r1", "r2")
IMMEDIATE = "/services/TA1/BB2/CC3"
DIGEST = "/services/TD1/BD2/CD3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, url: str, sims: list[Any], ttl: int, port: int) -> Path:
    registries = "".join(f"""
[[registry]]
name = "{name}"
url = "{sim.url}"
username = "{sim.admin[0]}"
password = "${{SIM_PASSWORD_{i}}}"
requests_per_second = 200.0
burst = 50
max_concurrent_requests = 8
max_scans_in_flight = 4
""" for i, (name, sim) in enumerate(zip(REGISTRIES, sims, strict=True)))
    kinds = [('on_missed = "run_once"', "r0"), ('on_missed = "skip"', "r1"),
             ('jitter = "5s"', "r2")]
    schedules = "".join(f"""
[[schedule]]
name = "every-minute-{reg}"
cron = "* * * * *"
registries = ["{reg}"]
select = ["changed", "unscanned", "failed", "db_updated"]
{kind}
""" for kind, reg in kinds)
    path.write_text(f"""\
[daemon]
database = "{url}"
stop_timeout = "5s"
lease_ttl = "{ttl}s"
listen = "127.0.0.1:{port}"
{registries}{schedules}
[[receiver]]
name = "secops"
urls = ["slack://TA1/BB2/CC3/?image=no&footer=no"]

[[receiver]]
name = "digest"
urls = ["slack://TD1/BD2/CD3/?image=no&footer=no"]

[[route]]
receivers = ["secops"]
min_severity = "High"
events = ["new", "fix_available"]
continue = true

[[route]]
name = "minutely-digest"
receivers = ["digest"]
group = "digest"
digest_cron = "* * * * *"
min_severity = "High"
events = ["new", "fix_available"]
""")
    return path


@dataclass
class Blow:
    kind: str  # "kill" or "stop"
    pid: int
    at: float  # monotonic
    wall: datetime
    held: dict[str, int]  # unit -> epoch the victim held it at
    taken: dict[str, float] = field(default_factory=dict)  # unit -> seconds to a new holder
    resumed_wall: datetime | None = None


@dataclass
class Figures:
    blows: list[Blow]
    takeovers: list[float]
    lost_units: int
    posts: int
    duplicates: int
    in_flight_allowance: int
    missing: set[str]
    unexpected: set[str]
    overlapping_runs: list[tuple[str, int, int]]
    unfired_minutes: dict[str, list[str]]
    stale_finishes: list[tuple[str, str]]
    wanted: set[str]

    def p95(self) -> float:
        if not self.takeovers:
            return 0.0
        ordered = sorted(self.takeovers)
        return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


class Campaign:
    def __init__(self, workdir: Path, url: str, *, ttl: int = 3, seed: int = 19) -> None:
        self.workdir = workdir
        self.url = url
        self.ttl = ttl
        self.rng = random.Random(seed)
        self.sims = [start_simulator(SimOptions(
            seed=seed + i, projects=1, repositories_per_project=2, artifacts_per_repository=2,
            scanned_share=0.5, index_share=0.0, chart_share=0.0, scan_seconds=0.2,
            scanner_concurrency=2)) for i in range(len(REGISTRIES))]
        self.slack = SlackHook()
        self.engine: Engine = create_engine(url)
        self.env = {f"SIM_PASSWORD_{i}": sim.admin[1] for i, sim in enumerate(self.sims)}
        self.slots: list[DaemonProcess | None] = [None, None, None]
        self.ports = [free_port() for _ in self.slots]
        self.stopped: set[int] = set()
        self.everyone: list[DaemonProcess] = []
        self.samples: list[tuple[float, dict[str, tuple[str | None, int]]]] = []
        self._sampling = threading.Event()
        self.updates: list[dict[str, Any]] = []
        self.started_wall = datetime.now(UTC)

    # ---- processes ---------------------------------------------------------------------------

    def start(self, slot: int) -> DaemonProcess:
        workdir = self.workdir / f"i{slot}-{len(self.everyone)}"
        workdir.mkdir()
        config = write_config(workdir / "config.toml", self.url, self.sims, self.ttl,
                              self.ports[slot])
        proc = DaemonProcess(driver_command(slack_base=f"http://127.0.0.1:{self.slack.port}"
                                            "/services"),
                             ["run", "--config", str(config)], workdir, env=self.env)
        self.slots[slot] = proc
        self.everyone.append(proc)
        return proc

    def running(self) -> list[tuple[int, DaemonProcess]]:
        return [(i, p) for i, p in enumerate(self.slots)
                if p is not None and p.proc.poll() is None and p.proc.pid not in self.stopped]

    # ---- the lease table, sampled ------------------------------------------------------------

    def leases(self) -> dict[str, tuple[str | None, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT unit, CASE WHEN expires_at > (clock_timestamp() AT TIME ZONE 'UTC') "
                "THEN holder END, epoch FROM lease")).all()
        return {unit: (holder, int(epoch)) for unit, holder, epoch in rows}

    def _sample(self) -> None:
        while not self._sampling.is_set():
            with contextlib.suppress(Exception):  # the table may not exist yet
                self.samples.append((time.monotonic(), self.leases()))
            time.sleep(0.1)

    @staticmethod
    def pid_of(holder: str | None) -> int | None:
        return int(holder.split(":")[1]) if holder else None

    # ---- the campaign ------------------------------------------------------------------------

    def start_all(self) -> None:
        """Three instances, ready, every unit held."""
        for slot in range(len(self.slots)):
            self.start(slot)
        for proc in self.everyone:
            proc.wait_for_event("daemon_ready")
        self._wait(lambda: len(self.leases()) == 5 and all(h for h, _ in self.leases().values()),
                   "every unit held", 30)

    def run(self, chaos_seconds: float, blows: int, *, started: bool = False) -> Figures:
        if not started:
            self.start_all()
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        self._wait(self._first_runs_done, "a first run of every schedule", 120)
        first_update = datetime.now(UTC)
        self.update()
        done: list[Blow] = []
        gap = chaos_seconds / blows
        chaos_end = time.monotonic() + chaos_seconds
        while len(done) < blows and time.monotonic() < chaos_end + gap:
            time.sleep(gap * self.rng.uniform(0.6, 1.0))
            blow = self._strike()
            if blow is not None:
                done.append(blow)
        time.sleep(self.ttl * 2 + 1.5)  # the last SIGSTOP's lease expires and is taken over
        for pid in list(self.stopped):
            self._cont(pid, done)
        for slot, proc in enumerate(self.slots):
            if proc is None or proc.proc.poll() is not None:
                self.start(slot)
        # The first update is scanned everywhere before the second: what a route owes is then
        # what each update says (two updates seen by one rescan would merge their changes).
        self._wait(lambda: self._settled(first_update, self.wanted()),
                   "the first scanner DB update to be scanned and told", 150)
        last_update = datetime.now(UTC)
        self.update()
        wanted = self.wanted()
        self._wait(lambda: self._settled(last_update, wanted), "the cluster to settle", 150)
        self._sampling.set()
        sampler.join(5)
        for _, proc in self.running():
            proc.signal(signal.SIGTERM)
        for proc in self.everyone:
            if proc.proc.poll() is None:
                proc.wait_exit()
        return self.figures(done, wanted)

    def update(self) -> None:
        for sim in self.sims:
            self.updates.append(sim.control.db_update(added=0.15, fix_released=0.15,
                                                      rescored=0.05))

    def wanted(self) -> set[str]:
        return set().union(*(expected_ids(u, Severity.HIGH) for u in self.updates))

    def _strike(self) -> Blow | None:
        candidates = self.running()
        if len(candidates) < 2:
            return None
        holders = {self.pid_of(h) for h, _ in self.leases().values()}
        busy = [c for c in candidates if c[1].proc.pid in holders] or candidates
        slot, proc = self.rng.choice(busy)
        pid = proc.proc.pid
        held = {u: e for u, (h, e) in self.leases().items() if self.pid_of(h) == pid}
        kind = self.rng.choice(("kill", "stop"))
        blow = Blow(kind, pid, time.monotonic(), datetime.now(UTC), held)
        if kind == "kill":
            proc.signal(signal.SIGKILL)
            proc.wait_exit()
            threading.Timer(2.0, self.start, args=(slot,)).start()
        else:
            proc.signal(signal.SIGSTOP)
            self.stopped.add(pid)
            threading.Timer(self.ttl * 2 + 1.0, self._cont, args=(pid, [blow])).start()
        return blow

    def _cont(self, pid: int, blows: list[Blow]) -> None:
        if pid not in self.stopped:
            return
        self.stopped.discard(pid)
        for proc in self.everyone:
            if proc.proc.pid == pid and proc.proc.poll() is None:
                proc.signal(signal.SIGCONT)
        for blow in blows:
            if blow.pid == pid and blow.resumed_wall is None:
                blow.resumed_wall = datetime.now(UTC)

    def _wait(self, check: Any, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                tails = "\n---\n".join(p.log_tail(15) for p in self.everyone[-3:])
                raise AssertionError(f"timed out waiting for {what}\n{tails}")
            time.sleep(0.5)

    def _first_runs_done(self) -> bool:
        with self.engine.connect() as conn:
            done = conn.execute(text("SELECT count(DISTINCT schedule) FROM cron_fire "
                                     "WHERE finished_at IS NOT NULL")).scalar()
        return bool(done == len(REGISTRIES))

    def _settled(self, after: datetime, wanted: set[str]) -> bool:
        floor = (after + timedelta(minutes=1)).replace(second=0, microsecond=0,
                                                       tzinfo=None)
        with self.engine.connect() as conn:
            fired = conn.execute(text(
                "SELECT count(DISTINCT schedule) FROM cron_fire WHERE finished_at IS NOT NULL "
                "AND due_at >= :floor"), {"floor": floor}).scalar()
            pending = conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL "
                                        "AND dead_at IS NULL")).scalar()
        named = {c for path, body in self.posts(IMMEDIATE) for c in CVE.findall(body)}
        return fired == len(REGISTRIES) and pending == 0 and wanted <= named

    def posts(self, path: str) -> list[tuple[str, str]]:
        out = []
        for where, payload in list(self.slack.posts):
            if where == path:
                att = payload["attachments"][0]
                out.append((where, att.get("title", "") + "\n" + att.get("text", "")))
        return out

    # ---- figures -----------------------------------------------------------------------------

    def figures(self, blows: list[Blow], wanted: set[str]) -> Figures:
        takeovers, lost = [], 0
        for blow in blows:
            for unit, epoch in blow.held.items():
                after = next((t for t, seen in self.samples if t >= blow.at
                              and seen.get(unit, (None, 0))[1] > epoch
                              and seen[unit][0] is not None
                              and self.pid_of(seen[unit][0]) != blow.pid), None)
                if after is None:
                    lost += 1
                else:
                    blow.taken[unit] = after - blow.at
                    takeovers.append(after - blow.at)
        immediate = self.posts(IMMEDIATE)
        counts = Counter(body for _, body in immediate + self.posts(DIGEST))
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        named = {c for _, body in immediate for c in CVE.findall(body)}
        relay_blows = sum(1 for b in blows if "outbox" in b.held)
        with self.engine.connect() as conn:
            runs = conn.execute(text("SELECT schedule, id, started_at, finished_at "
                                     "FROM schedule_run WHERE finished_at IS NOT NULL "
                                     "ORDER BY schedule, started_at")).all()
            fires = conn.execute(text("SELECT schedule, due_at, instance, epoch, finished_at "
                                      "FROM cron_fire")).all()
        overlapping = []
        for prev, cur in zip(runs, runs[1:], strict=False):
            if prev.schedule == cur.schedule and cur.started_at < prev.finished_at:
                overlapping.append((cur.schedule, prev.id, cur.id))
        first_due = min(f.due_at for f in fires)
        last_due = max(f.due_at for f in fires)
        unfired: dict[str, list[str]] = {}
        for schedule in {f.schedule for f in fires}:
            have = {f.due_at for f in fires if f.schedule == schedule and f.finished_at}
            minute = first_due + timedelta(minutes=1)
            while minute < last_due:
                if minute not in have:
                    unfired.setdefault(schedule, []).append(minute.isoformat())
                minute += timedelta(minutes=1)
        stale = []
        for blow in blows:
            if blow.kind != "stop" or blow.resumed_wall is None:
                continue
            resumed = blow.resumed_wall.replace(tzinfo=None)
            for f in fires:
                if f.instance.split(":")[1] == str(blow.pid) and f.finished_at is not None \
                        and f.finished_at >= resumed and f"registry:{_reg(f.schedule)}" \
                        in blow.taken and blow.held[f"registry:{_reg(f.schedule)}"] == f.epoch:
                    stale.append((f.schedule, f.due_at.isoformat()))
        return Figures(blows, takeovers, lost, len(immediate), duplicates, relay_blows,
                       wanted - named, named - wanted, overlapping, unfired, stale, wanted)

    def close(self) -> None:
        self._sampling.set()
        for proc in self.everyone:
            if proc.proc.pid in self.stopped:
                proc.signal(signal.SIGCONT)
            proc.close()
        self.slack.close()
        for sim in self.sims:
            sim.stop()
        self.engine.dispose()


def _reg(schedule: str) -> str:
    return schedule.rsplit("-", 1)[1]
