"""Helpers for tests that run the real ``scanwatch`` against a simulator and read its SQLite file.

``Cli`` runs the console script in a subprocess with the registry's secret in the environment;
``snapshot`` reads every row of every table, to show that a refused command changed nothing;
``World`` is a simulator, a config for one account and the history of a first good run.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from daemon.sim import Simulator

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))
TIMEOUT = 120  # seconds for one command: generous, for a loaded 2-core machine
REGISTRY = "prod-harbor"


def sim_toml(db: Path | str, url: str, *, drain: bool = False, in_flight: int | None = None
             ) -> str:
    """The ``[daemon]`` and ``[[registry]] sim`` tables of a config for a simulator at ``url``
    (the admin account, its password from ``$SIM_PASSWORD``), history in ``db``; ``drain``: a
    60 s outbox drain, ``in_flight``: ``max_scans_in_flight``. Tests add the rest."""
    return (f'[daemon]\ndatabase = "sqlite:///{db}"\n'
            + ('outbox_drain_timeout = "60s"\n' if drain else "")
            + f'\n[[registry]]\nname = "sim"\nurl = "{url}"\nusername = "admin"\n'
            'password = "${SIM_PASSWORD}"\nrequests_per_second = 200.0\nburst = 100\n'
            + (f"max_scans_in_flight = {in_flight}\n" if in_flight is not None else ""))


def write_config(directory: Path, url: str, username: str) -> Path:
    path = directory / "config.toml"
    path.write_text(f"""\
[daemon]
database = "sqlite:///{directory / 'history.db'}"

[[registry]]
name = "{REGISTRY}"
url = "{url}"
username = "{username}"
password = "${{HARBOR_SECRET}}"
requests_per_second = 200.0
burst = 50
max_scans_in_flight = 8
max_retries = 1

[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["{REGISTRY}"]
select = ["changed", "unscanned", "failed"]
""")
    return path


class Cli:
    def __init__(self, config: Path, secret: str) -> None:
        self.config = config
        self.env = {**os.environ, "HARBOR_SECRET": secret}
        self.env.pop("SCANWATCH_CONFIG", None)

    @property
    def database(self) -> Path:
        return self.config.parent / "history.db"

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCANWATCH, *args, "--config", str(self.config)],
                              capture_output=True, text=True, env=self.env, timeout=TIMEOUT)


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [ln for ln in result.stderr.splitlines() if ln.startswith("scanwatch: ")]


def snapshot(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: equal snapshots mean nothing was written."""
    with sqlite3.connect(database) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
                for name in tables}


def resolved(database: Path) -> dict[tuple[str, str, str, str], str]:
    """Each resolved finding, (project, repository, vulnerability, package), with its reason."""
    with sqlite3.connect(database) as conn:
        return {(p, r, v, k): why for p, r, v, k, why in conn.execute(
            "SELECT r.project, r.name, f.vulnerability, f.package, f.resolved_reason "
            "FROM finding f JOIN repository r ON r.id = f.repository_id "
            "WHERE f.resolved_at IS NOT NULL")}


def open_findings(database: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(database) as conn:
        return sorted(conn.execute(
            "SELECT r.project, r.name, f.vulnerability, f.package FROM finding f "
            "JOIN repository r ON r.id = f.repository_id WHERE f.resolved_at IS NULL").fetchall())


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def scanned_target(sim: Simulator, project: str) -> str:
    """registry/project/repository:tag of an artifact that has a scan (for scan-log)."""
    with httpx.Client(base_url=sim.url + "/api/v2.0", auth=sim.admin, timeout=30) as c:
        arts = []
        for repo in c.get(f"/projects/{project}/repositories").raise_for_status().json():
            short = repo["name"].split("/", 1)[1].replace("/", "%252F")
            arts += c.get(f"/projects/{project}/repositories/{short}/artifacts",
                          params={"with_scan_overview": "true", "page_size": 100}).json()
    art = next(a for a in arts if a["tags"] and a.get("scan_overview"))
    return f"{REGISTRY}/{art['repository_name']}:{art['tags'][0]['name']}"


class World:
    """A simulator, a config for one account, and a history after a first good run."""

    def __init__(self, sim: Simulator, directory: Path, username: str, secret: str,
                 project: str, url: str | None = None) -> None:
        self.sim = sim
        self.cli = Cli(write_config(directory, url or sim.url, username), secret)
        self.username = username
        self.target = scanned_target(sim, project)  # before any test locks the admin out
        first = self.cli("run", "--once")
        assert first.returncode == 0, first.stderr
        assert open_findings(self.cli.database), "the first run found nothing to lose"


def present(database: Path) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """The artifacts history holds as present and the tags it holds open, by name."""
    with sqlite3.connect(database) as conn:
        artifacts = conn.execute(
            "SELECT r.project, r.name, a.digest FROM artifact a "
            "JOIN repository r ON r.id = a.repository_id WHERE a.removed_at IS NULL").fetchall()
        tags = conn.execute(
            "SELECT r.project, r.name, t.name, t.digest FROM tag t "
            "JOIN repository r ON r.id = t.repository_id WHERE t.until IS NULL").fetchall()
    return sorted(artifacts), sorted(tags)


def on_terminal(args: list[str], env: dict[str, str] | None = None,
                columns: int = 100) -> tuple[int, str]:
    """Run ``scanwatch ARGS`` with stdout and stderr on one pseudo-terminal ``columns`` wide;
    return its exit status and everything it wrote there (CRLF as LF)."""
    import pty

    leader, follower = pty.openpty()
    env = {**(env if env is not None else os.environ), "COLUMNS": str(columns), "LINES": "40"}
    proc = subprocess.Popen([SCANWATCH, *args], stdout=follower, stderr=follower,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=TIMEOUT), b"".join(chunks).decode().replace("\r\n", "\n")
