"""Campaign: faults, kills, planted secrets, hostile strings and a huge body against the real
``scanwatch`` processes, with the figures the "Nothing breaks it" issue asks to hold.

Every part runs the console script in subprocesses against the simulator over real HTTP (a
real proxy in front of it where the registry must misbehave) with a real SQLite file:

1. **Faults.** Every fault kind the simulator has (500, 502, 503, 429, reset, slow, malformed,
   truncated) at 5 % of API calls, ``--fault-runs`` runs of ``run --once``, then one run with
   the faults off. Nothing changes in the registry meanwhile, so any finding resolved is a
   false "fixed"; the open findings after the clean run are compared with a twin simulator's
   (same seed) that never had a fault: a finding the twin has and this one lacks is missed.
2. **Kills around delivery.** Per trial: a first clean run, a scanner DB update, a ``run
   --once`` SIGKILLed after a random delay (0.2 s … the run's own duration), then a clean run.
   The JSON receiver (a real HTTP endpoint) must have received every CVE the update owes a
   route of High (lost = owed but never received), each message at most twice (a resend of the
   one in flight at the kill).
3. **Secrets and hostile strings.** The registry password and a receiver URL's query value
   come from ``${ENV}``; package names carry terminal escapes (ESC, CSI, OSC); every command's
   stdout and stderr at ``--log-level debug``, and the database file, are searched for each
   secret in plain, URL-encoded, base64 and JSON-escaped forms, and for raw ESC bytes.
4. **A huge body.** A 120 MB chunked report: the process's own peak RSS (VmHWM).

Tracebacks are counted in every output of every part. Prints one line per figure with its
target, and ``campaign: ok`` or ``campaign: FAILED`` last (exit status 0 or 1).

    .venv/bin/python bench/campaign.py [--kills 10] [--fault-runs 3] [--seed 5]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' real proxy and process helpers

from hookkit import Hook  # noqa: E402
from registry_proxy import FaultProxy  # noqa: E402
from runkit import SCANWATCH, Cli, open_findings, resolved, write_config  # noqa: E402

from daemon.model import Severity  # noqa: E402
from daemon.sim import SimOptions, start_simulator  # noqa: E402
from daemon.sim.options import FAULT_KINDS, FaultRule  # noqa: E402

HOOK_CODE = "c0de-Zq9+/x=planted"  # a receiver URL's query value, as Azure Functions use
MAX_RSS = 300 * 1024 * 1024
ESCAPES = ("\x1b[31m", "\x1b]8;;http://evil.example/\x1b\\", "\x1b[2J")


def options(seed: int, **kw: Any) -> SimOptions:
    base: dict[str, Any] = dict(
        seed=seed, projects=2, repositories_per_project=3, artifacts_per_repository=3,
        vulnerabilities_per_artifact=8, scanned_share=0.6, index_share=0.0, chart_share=0.0,
        scan_seconds=0.1)
    return SimOptions(**{**base, **kw})


def with_receiver(config: Path, url: str) -> None:
    text = config.read_text().replace('select = ["changed", "unscanned", "failed"]',
                                      'select = ["changed", "unscanned", "failed", "db_updated"]')
    config.write_text(text)
    with config.open("a") as f:
        f.write(f'\n[[receiver]]\nname = "hook"\nurls = ["{url}"]\nformat = "json"\n\n'
                '[[route]]\nreceivers = ["hook"]\nmin_severity = "High"\n'
                'events = ["new", "fix_available"]\n')


class Tally:
    def __init__(self) -> None:
        self.tracebacks = 0
        self.figures: list[tuple[str, float, str, bool]] = []

    def saw(self, result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
        self.tracebacks += (result.stdout + result.stderr).count("Traceback")
        return result

    def figure(self, name: str, value: float, target: str, ok: bool) -> None:
        self.figures.append((name, value, target, ok))
        print(f"{name:<34} {value:>12g}   target {target:<12} {'ok' if ok else 'FAILED'}",
              flush=True)


# -- 1. faults ----------------------------------------------------------------------------------


def faults(work: Path, tally: Tally, seed: int, runs: int) -> None:
    rules = [FaultRule(kind, rate=0.05, delay=0.5, retry_after=1) for kind in FAULT_KINDS]
    faulty = start_simulator(options(seed, faults=tuple(rules)))
    twin = start_simulator(options(seed))
    try:
        (work / "faulty").mkdir()
        (work / "twin").mkdir()
        cli = Cli(write_config(work / "faulty", faulty.url, "admin"), faulty.admin[1])
        ref = Cli(write_config(work / "twin", twin.url, "admin"), twin.admin[1])
        codes = Counter(tally.saw(cli("run", "--once")).returncode for _ in range(runs))
        print(f"  faulted runs' exit codes: {dict(codes)}", flush=True)
        faulty.control.set_faults([])
        tally.saw(cli("run", "--once"))
        for _ in range(runs + 1):
            tally.saw(ref("run", "--once"))
        false_fixed = len(resolved(cli.database))
        missed = len(set(open_findings(ref.database)) - set(open_findings(cli.database)))
        extra = len(set(open_findings(cli.database)) - set(open_findings(ref.database)))
        tally.figure("faults: false fixed", false_fixed, "0", false_fixed == 0)
        tally.figure("faults: missed findings", missed, "0", missed == 0)
        tally.figure("faults: findings the twin lacks", extra, "0", extra == 0)
    finally:
        faulty.stop()
        twin.stop()


# -- 2. kills around delivery -----------------------------------------------------------------


def owed(changes: dict[str, Any], floor: Severity) -> set[str]:
    """The CVEs a route of ``floor`` owes after a DB update (added, or a fix released)."""
    final: dict[tuple[str, str, str], str] = {}
    for kind in ("added", "fix_released", "rescored"):
        for e in changes[kind]:
            final[(e["id"], e["package"], e["version"])] = e["severity"]
    return {e["id"] for kind in ("added", "fix_released") for e in changes[kind]
            if e["repositories"]
            and Severity.parse(final[(e["id"], e["package"], e["version"])]) >= floor}


def named(documents: list[dict[str, Any]]) -> set[str]:
    return {v["id"] for d in documents for a in (*d["fix_now"], *d["no_fix"])
            for v in a["vulnerabilities"]}


def kills(work: Path, tally: Tally, seed: int, count: int) -> None:
    rng = random.Random(seed)
    lost = duplicates_over = in_flight_dups = 0
    for trial in range(count):
        sim = start_simulator(options(seed + trial, scanned_share=1.0))
        hook = Hook()
        try:
            where = work / f"kill{trial}"
            where.mkdir()
            cli = Cli(write_config(where, sim.url, "admin"), sim.admin[1])
            with_receiver(cli.config, f"json://127.0.0.1:{hook.port}/hook")
            tally.saw(cli("run", "--once"))
            before = len(hook.bodies)
            changes = sim.control.db_update(added=0.15, fix_released=0.15, rescored=0.05)
            want = owed(changes, Severity.HIGH)
            sim.control.set_faults([FaultRule("slow", rate=0.3, delay=0.2)])  # a longer run
            proc = subprocess.Popen([SCANWATCH, "run", "--once", "--config", str(cli.config)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env={**cli.env, "HOOK_CODE": HOOK_CODE})
            # Odd trials: SIGKILL at a random moment of the run; even ones: as the receiver
            # takes the message (0-30 ms after it arrived), between the send and the mark.
            began = time.monotonic()
            if trial % 2:
                delay = rng.uniform(0.2, 6.0)
                try:
                    proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
            else:
                while len(hook.bodies) == before and proc.poll() is None \
                        and time.monotonic() - began < 120:
                    time.sleep(0.002)  # until the receiver has taken a message
                if proc.poll() is None:
                    time.sleep(rng.uniform(0, 0.03))
                    proc.send_signal(signal.SIGKILL)
                delay = time.monotonic() - began
            out, err = proc.communicate()
            tally.tracebacks += (out + err).count("Traceback")
            sim.control.set_faults([])
            tally.saw(cli("run", "--once"))
            tally.saw(cli("run", "--once"))  # anything still queued goes now
            documents = hook.documents(before)
            got = named(documents)
            missing = want - got
            lost += len(missing)
            per_id = Counter(d["id"] for d in documents)
            in_flight_dups += sum(n - 1 for n in per_id.values())
            duplicates_over += sum(n - 2 for n in per_id.values() if n > 2)
            print(f"  kill {trial + 1}: SIGKILL at {delay:.2f}s (exit {proc.returncode}; "
                  f"{'killed' if proc.returncode == -signal.SIGKILL else 'ended first'}), "
                  f"{len(documents)} messages, owed {len(want)}, "
                  f"lost {len(missing)}, resent {sum(n - 1 for n in per_id.values())}",
                  flush=True)
        finally:
            hook.shutdown()
            hook.server_close()
            sim.stop()
    tally.figure("kills: CVEs lost", lost, "0", lost == 0)
    tally.figure("kills: duplicates per kill", in_flight_dups / max(count, 1), "<= 1",
                 in_flight_dups <= count)
    tally.figure("kills: a message more than twice", duplicates_over, "0", duplicates_over == 0)


# -- 3. secrets and hostile strings -----------------------------------------------------------


def forms(secret: str) -> set[str]:
    return {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
            base64.b64encode(secret.encode()).decode(), json.dumps(secret)[1:-1]}


def secrets_and_escapes(work: Path, tally: Tally, seed: int) -> None:
    sim = start_simulator(options(seed, scanned_share=1.0))
    proxy = FaultProxy(sim.url)
    hook = Hook()
    try:
        where = work / "secrets"
        where.mkdir()
        cli = Cli(write_config(where, proxy.url, "admin"), sim.admin[1])
        cli.env["HOOK_CODE"] = HOOK_CODE
        with_receiver(cli.config, f"json://127.0.0.1:{hook.port}/hook?-code=${{HOOK_CODE}}")
        hostile = "".join(ESCAPES).encode("unicode_escape").replace(b"\\x", b"\\u00")
        proxy.poison = lambda body: body.replace(b'"package":"', b'"package":"' + hostile, 1)
        outputs: list[str] = []
        commands = [("run", "--once"), ("findings",), ("findings", "--format", "json"),
                    ("history", "prod-harbor"), ("status",), ("status", "--format", "json"),
                    ("runs",), ("alerts", "list"), ("config", "check"), ("doctor",)]
        for args in commands:
            result = tally.saw(cli(*args, "--log-level", "debug"))
            outputs += [result.stdout, result.stderr]
        reports = [ln.split()[0] for ln in cli("findings").stdout.splitlines()[1:]
                   if ln.startswith("prod-harbor/")]
        for target in reports[:3]:
            result = tally.saw(cli("report", "show", target, "--log-level", "debug"))
            outputs += [result.stdout, result.stderr]
        database = cli.database.read_bytes().decode("utf-8", "replace")
        with sqlite3.connect(cli.database) as conn:
            hostile_rows = conn.execute(
                "SELECT COUNT(*) FROM finding WHERE package LIKE '%[31m%'").fetchone()[0]
        print(f"  findings with a hostile package name: {hostile_rows}", flush=True)
        found = 0
        for secret in (sim.admin[1], HOOK_CODE):
            for form in forms(secret):
                found += sum(text.count(form) for text in (*outputs, database))
        raw = sum(text.count("\x1b") for text in outputs)
        tally.figure("secrets: occurrences in any output", found, "0", found == 0)
        tally.figure("escapes: raw ESC bytes in output", raw, "0", raw == 0)
    finally:
        hook.shutdown()
        hook.server_close()
        proxy.close()
        sim.stop()


# -- 4. a huge body -----------------------------------------------------------------------------


def high_water(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(ln.split()[1]) * 1024 for ln in status.splitlines()
                 if ln.startswith("VmHWM:")), 0)


def huge_body(work: Path, tally: Tally, seed: int) -> None:
    sim = start_simulator(options(seed, scanned_share=1.0))
    proxy = FaultProxy(sim.url)
    try:
        where = work / "huge"
        where.mkdir()
        cli = Cli(write_config(where, proxy.url, "admin"), sim.admin[1])
        proxy.huge = "/additions/vulnerabilities"
        with open(where / "out.txt", "w+") as out:
            proc = subprocess.Popen([SCANWATCH, "run", "--once", "--config", str(cli.config)],
                                    stdout=out, stderr=out, env=cli.env)
            peak = 0
            while proc.poll() is None:
                peak = max(peak, high_water(proc.pid))
                time.sleep(0.05)
            out.seek(0)
            tally.tracebacks += out.read().count("Traceback")
        tally.figure("huge body: peak RSS (MB)", round(peak / 2**20, 1), "< 300",
                     0 < peak < MAX_RSS)
    finally:
        proxy.close()
        sim.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--fault-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="scanwatch-campaign-") as tmp:
        work = Path(tmp)
        faults(work, tally, args.seed, args.fault_runs)
        kills(work, tally, args.seed, args.kills)
        secrets_and_escapes(work, tally, args.seed)
        huge_body(work, tally, args.seed)
    tally.figure("tracebacks in any output", tally.tracebacks, "0", tally.tracebacks == 0)
    ok = all(f[3] for f in tally.figures)
    print("campaign: ok" if ok else "campaign: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
