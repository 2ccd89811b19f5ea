"""Several daemons on one PostgreSQL fetch each intel feed once: only the holder of the
``feeds`` lease fetches; when it dies, the instance that takes the lease over fetches at once,
conditionally (the ETag its predecessor kept: a 304). Two real ``scanwatch run`` processes,
the simulator serving the real KEV catalog over HTTP, a real PostgreSQL database."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from daemon_driver import DaemonProcess, driver_command
from pgkit import ADMIN_URL, NOT_SET, fresh_database
from sqlalchemy import create_engine, text

from daemon.sim import SimOptions, start_simulator

TTL = 2  # seconds


def holders(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {str(h) for (h,) in conn.execute(text(
                "SELECT holder FROM lease WHERE holder IS NOT NULL AND expires_at > now()"))}
    finally:
        engine.dispose()


def feeds_holder(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT holder FROM lease WHERE unit = 'feeds'"))
                       .scalar() or "")
    finally:
        engine.dispose()


def test_only_the_feeds_lease_holder_fetches_and_a_successor_takes_over(
        tmp_path: Path, shared_dir: Path) -> None:
    if not ADMIN_URL:
        pytest.skip(NOT_SET)
    kev = shared_dir / "fixtures" / "kev" / "kev-2025.08.25.json"
    with fresh_database() as url, start_simulator(SimOptions(
            seed=5, projects=1, repositories_per_project=1, artifacts_per_repository=1,
            feeds={"kev": str(kev)})) as sim:
        config = tmp_path / "config.toml"
        config.write_text(f"""\
[daemon]
database = "{url}"
lease_ttl = "{TTL}s"

[[registry]]
name = "sim"
url = "{sim.url}"
username = "admin"
password = "${{SIM_PASSWORD}}"

[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["sim"]
on_missed = "skip"

[[feed]]
name = "kev"
url = "{sim.url}/feeds/kev.json"
cron = "0 3 * * *"
""")

        def answers() -> dict[str, int]:
            return dict(httpx.get(f"{sim.url}/_sim/feeds").json()["kev"]["answers"])

        procs = []
        for n in range(2):
            workdir = tmp_path / f"i{n}"
            workdir.mkdir()
            procs.append(DaemonProcess(driver_command(), ["run", "--config", str(config)],
                                       workdir, env={"SIM_PASSWORD": sim.admin[1]}))
        try:
            for p in procs:
                p.wait_for_event("daemon_ready")
            # The leases settle (a fair share each: both hold some) and the first fetch is done.
            procs[0].wait_until(lambda: len(holders(url)) == 2 and any(
                p.logged("feed_updated") for p in procs), "the leases shared, a fetch", 30)
            time.sleep(TTL / 3)  # a renewal cycle: a lease handed over is taken by now
            holder = feeds_holder(url)
            [first] = [p for p in procs if f":{p.proc.pid}:" in holder]
            [other] = [p for p in procs if p is not first]
            # One full fetch across the cluster; a hand-over of the lease costs a 304 at most.
            seen = answers()
            assert seen["200"] == 1 and set(seen) <= {"200", "304"}, seen
            assert len(first.logged("feed_updated")) + len(other.logged("feed_updated")) == 1
            mark = len(other.events)
            first.signal(signal.SIGKILL)
            first.wait_exit()
            [done] = other.wait_until(
                lambda: [e for e in other.events[mark:] if e.get("event") == "feed_unchanged"],
                "the successor fetching the feed", 6 * TTL + 20)
            assert done["version"] == "2025.08.25"
            assert f":{other.proc.pid}:" in feeds_holder(url)
            after = answers()
            assert (after["200"], after.get("304", 0)) == (1, seen.get("304", 0) + 1), after
        finally:
            for p in procs:
                p.close()
