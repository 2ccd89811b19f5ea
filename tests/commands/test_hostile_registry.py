"""A registry that sends what no Harbor should, through a real proxy (tests/registry_proxy.py) in
front of the simulator, to the real ``scanwatch run --once`` in a subprocess and its SQLite file.

- A 120 MB chunked body is refused with one line naming the URL and the limit, and the process
  stays small while it is sent (its own peak RSS, VmHWM from /proc).
- A listing that would remove most of a registry at once (empty listings, lookups 404: what a
  permission change looks like) records nothing, says so in one line and queues a scan problem.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_proxy import HUGE_BYTES, FaultProxy
from runkit import (
    SCANWATCH,
    Cli,
    World,
    error_lines,
    open_findings,
    present,
    resolved,
    write_config,
)

from daemon.sim import SimOptions, start_simulator

MAX_RSS_BYTES = 300 * 1024 * 1024  # the bound; the body alone is 120 MB


def small_sim() -> SimOptions:
    return SimOptions(seed=5, projects=1, repositories_per_project=2, artifacts_per_repository=3,
                      vulnerabilities_per_artifact=6, scanned_share=1.0, index_share=0.0,
                      chart_share=0.0, scan_seconds=0.1)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Cli, FaultProxy]]:
    """A simulator behind the proxy and a config pointing at the proxy; nothing run yet."""
    sim = start_simulator(small_sim())
    proxy = FaultProxy(sim.url)
    try:
        yield Cli(write_config(tmp_path, proxy.url, "admin"), sim.admin[1]), proxy
    finally:
        proxy.close()
        sim.stop()


def high_water(pid: int) -> int:
    """The process's own peak RSS (VmHWM) in bytes, 0 once it is gone. Not ``ru_maxrss``: a
    forked child inherits its parent's high-water mark, and pytest's may be larger."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(ln.split()[1]) * 1024 for ln in status.splitlines()
                 if ln.startswith("VmHWM:")), 0)


def run_measured(cli: Cli, *args: str) -> tuple[int, str, int]:
    """Run scanwatch; return its exit code, its stdout and stderr, and its own peak RSS in
    bytes (VmHWM only grows, so its last reading before the exit is the peak)."""
    with open(cli.config.parent / "output.txt", "w+") as out:
        proc = subprocess.Popen([SCANWATCH, *args, "--config", str(cli.config)],
                                stdout=out, stderr=out, env=cli.env)
        peak = 0
        try:
            while True:
                peak = max(peak, high_water(proc.pid))
                try:
                    proc.wait(timeout=0.05)
                    break
                except subprocess.TimeoutExpired:
                    continue
        finally:
            if proc.poll() is None:
                proc.kill()
        out.seek(0)
        return proc.returncode, out.read(), peak


@pytest.mark.parametrize(("suffix", "limit", "where"), [
    # Each report refused is that artifact's report not stored (logged), the rest goes on.
    pytest.param("/additions/vulnerabilities", "max_report_size = 32 MiB",
                 '"event": "report_not_stored"', id="report"),
    # A project whose listing is refused is not listed (said on stdout): nothing recorded.
    pytest.param("/artifacts", "max_response_size = 4 MiB", "prod-harbor/library: not listed",
                 id="listing"),
])
def test_a_120_mb_body_is_refused_in_one_line_with_memory_bounded(
    proxied: tuple[Cli, FaultProxy], suffix: str, limit: str, where: str
) -> None:
    cli, proxy = proxied
    proxy.huge = suffix
    code, output, peak = run_measured(cli, "run", "--once")
    assert "Traceback" not in output, output
    assert code == 0, output
    refused = [ln for ln in output.splitlines() if where in ln]
    assert len(refused) == len(proxy.huge_sent) > 0, output  # one line per body refused
    for line in refused:
        assert f"the response is larger than {limit}; refused" in line, line
        assert f"{proxy.url}/api/v2.0/projects/library/" in line and suffix in line
    assert all(0 < sent < HUGE_BYTES for sent in proxy.huge_sent)  # it stopped reading early
    assert peak < MAX_RSS_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
    assert open_findings(cli.database) == []


def test_a_walk_that_would_remove_most_of_a_registry_records_nothing(tmp_path: Path) -> None:
    sim = start_simulator(small_sim())
    proxy = FaultProxy(sim.url)
    try:
        world = World(sim, tmp_path, "admin", sim.admin[1], next(iter(sim.robots)),
                      url=proxy.url)
        cli = world.cli
        text = cli.config.read_text().replace(
            "[daemon]\n", '[daemon]\noutbox_drain_timeout = "0"\n')
        cli.config.write_text(text + """
[[receiver]]
name = "hook"
urls = ["json://127.0.0.1:9/hook"]

[[route]]
receivers = ["hook"]
""")
        before, held = open_findings(cli.database), present(cli.database)
        proxy.empty_listings = True
        result = cli("run", "--once")
        assert result.returncode == 0, result.stderr
        assert resolved(cli.database) == {}
        assert open_findings(cli.database) == before
        assert present(cli.database) == held
        [line] = error_lines(result)
        artifacts = len(held[0])
        assert line.startswith("scanwatch: warning: schedule nightly: registry prod-harbor: ")
        assert (f"the walk would remove {artifacts} of {artifacts} artifacts (100 %, more than "
                "max_removed_share = 0.5): nothing of it recorded") in line
        with sqlite3.connect(cli.database) as conn:
            queued = [r[0] for r in conn.execute("SELECT payloads FROM outbox")]
        assert any(f"would remove {artifacts} of {artifacts}" in b for b in queued), queued
    finally:
        proxy.close()
        sim.stop()
