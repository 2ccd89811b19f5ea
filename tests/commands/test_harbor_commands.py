"""`status`, `scan`, `scan-log`, `run --once`, `history` and `findings` as a user runs them.

Every command here is the real ``scanwatch`` console script in a subprocess, against a real
``scanwatch sim serve`` subprocess, with a config file whose password comes from the
environment and an SQLite history under tmp_path.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))
STATUSES = {"Not Scanned", "Not Supported", "Queued", "Scanning", "Error", "Complete"}
TIMEOUT = 120  # seconds for one command: generous, for a loaded 2-core machine


@dataclass(frozen=True)
class Sim:
    url: str
    password: str
    proc: subprocess.Popen[str]

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=30).json()


def start_sim(*flags: str) -> Sim:
    proc = subprocess.Popen([SCANWATCH, "sim", "serve", "--log-level", "warning", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise AssertionError(f"sim serve printed {url!r} first")
    user, password = proc.stdout.readline().split()
    assert user == "admin"
    return Sim(url, password, proc)


def stop_sim(sim: Sim) -> None:
    sim.proc.send_signal(signal.SIGTERM)
    try:
        sim.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        sim.proc.kill()
        sim.proc.wait()


def write_config(path: Path, url: str, *, extra_registry: str = "") -> Path:
    path.write_text(f"""\
[daemon]
database = "sqlite:///{path.parent / 'history.db'}"

[[registry]]
name = "sim"
url = "{url}"
username = "admin"
password = "${{SIM_PASSWORD}}"
requests_per_second = 200.0
burst = 50
max_scans_in_flight = 8
{extra_registry}

[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["sim"]
select = ["changed", "unscanned", "failed"]
""")
    return path


class Cli:
    def __init__(self, config: Path, password: str) -> None:
        self.config = config
        self.env = {**os.environ, "SIM_PASSWORD": password}
        self.env.pop("SCANWATCH_CONFIG", None)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCANWATCH, *args, "--config", str(self.config)],
                              capture_output=True, text=True, env=self.env, timeout=TIMEOUT)

    def json(self, *args: str) -> Any:
        result = self(*args, "--format", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert "Traceback" not in result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("scanwatch: ")]
    assert len(errors) == 1, result.stderr
    for name in names:
        assert name in errors[0], errors[0]


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    # Seed 1 with these shares: 12 top-level artifacts in 4 repositories, 4 of them image
    # indexes, 2 Helm charts, 5 scanned at start, the rest Not Scanned.
    started = start_sim("--seed", "1", "--projects", "2", "--repositories-per-project", "2",
                        "--artifacts-per-repository", "3", "--index-share", "0.3",
                        "--chart-share", "0.2", "--scan-seconds", "0.1",
                        "--scanner-concurrency", "4")
    yield started
    stop_sim(started)


@pytest.fixture(scope="module")
def cli(sim: Sim, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(write_config(tmp_path_factory.mktemp("main") / "config.toml", sim.url),
               sim.password)


def by_status(rows: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["status"] for r in rows)


def harbor_artifacts(sim: Sim) -> list[dict[str, Any]]:
    """The simulator's top-level artifacts as Harbor lists them (to know charts and indexes)."""
    out = []
    auth = ("admin", sim.password)
    for project in httpx.get(sim.url + "/api/v2.0/projects", auth=auth, timeout=30).json():
        repos = httpx.get(f"{sim.url}/api/v2.0/projects/{project['name']}/repositories",
                          auth=auth, timeout=30).json()
        for repo in repos:
            short = repo["name"][len(project["name"]) + 1:].replace("/", "%252F")
            arts = httpx.get(f"{sim.url}/api/v2.0/projects/{project['name']}/repositories/"
                             f"{short}/artifacts", params={"page_size": 100}, auth=auth,
                             timeout=30).json()
            out += [{**a, "repository": repo["name"]} for a in arts]
    return out


def repository_of(row: dict[str, Any]) -> str:
    """project/repository of a status row (its artifact is sim/project/repo:tag or …@digest)."""
    name = str(row["artifact"]).removeprefix("sim/")
    return name.split("@")[0] if "@" in name else name.rsplit(":", 1)[0]


# -- status -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def initial(sim: Sim, cli: Cli) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The simulator's counts and `status --format json`, before any test scans anything."""
    return sim.get("/_sim/inventory"), cli.json("status")


def test_it_shows_every_artifact_with_harbors_status_in_json_and_table(
    sim: Sim, cli: Cli, initial: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    inventory, rows = initial
    assert len(rows) == inventory["artifacts"] == 12
    assert {r["status"] for r in rows} <= STATUSES
    counts = by_status(rows)
    assert counts["Complete"] == inventory["scanned"] == 5
    assert counts["Not Supported"] == inventory["artifacts"] - inventory["scannable"] == 2
    assert counts["Not Scanned"] == inventory["scannable"] - inventory["scanned"]
    for project, numbers in inventory["per_project"].items():
        mine = [r for r in rows if r["artifact"].startswith(f"sim/{project}/")]
        assert len(mine) == numbers["artifacts"]
        assert by_status(mine)["Complete"] == numbers["scanned"]
    harbor = harbor_artifacts(sim)
    charts = {a["digest"] for a in harbor
              if a["media_type"] == "application/vnd.cncf.helm.config.v1+json"}
    assert {r["digest"] for r in rows if r["status"] == "Not Supported"} == charts
    for row in rows:
        if row["status"] == "Complete":
            assert sum(row["counts"].values()) <= row["total"] and row["total"] > 0
            assert row["scanner"].startswith("Trivy") and row["scanner_db"]
    index_types = ("application/vnd.oci.image.index.v1+json",
                   "application/vnd.docker.distribution.manifest.list.v2+json")
    indexes = {a["digest"] for a in harbor if a["manifest_media_type"] in index_types}
    assert len(indexes) == 4  # an index shows its children's merged overview, or Not Scanned
    by_digest = {r["digest"]: r for r in rows}
    order = [repository_of(r) for r in rows]  # one repository's artifacts listed together
    assert order == sorted(order)
    assert {by_digest[d]["status"] for d in indexes} == {"Complete", "Not Scanned"}

    table = cli("status")
    assert table.returncode == 0 and "Traceback" not in table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ARTIFACT", "STATUS", "DETAIL"]
    body = lines[2:]
    assert len(body) == len(rows)
    for row in rows:
        [line] = [ln for ln in body if ln.split()[0] == row["artifact"]]
        assert row["status"] in line
        if row["status"] == "Complete":
            c = row["counts"]
            assert f"C:{c['Critical']} H:{c['High']} M:{c['Medium']} L:{c['Low']}" in line


@pytest.mark.parametrize(
    ("target", "named"),
    [("nope/library/postgres:1.2.0", "'nope'"), ("sim/nope/postgres:1.2.0", "'nope'"),
     ("sim/library/nope:1.0.0", "'nope'"), ("sim/library/nope", "'nope'"),
     ("sim/library/postgres:9.9.9", "'9.9.9'"), ("sim/library/nope*:1.*", "sim/library/nope*:1.*")],
    ids=["registry", "project", "repository", "repository-without-tag", "tag",
         "glob-matching-nothing"],
)
def test_it_refuses_an_unknown_target_in_one_line(cli: Cli, target: str, named: str) -> None:
    result = cli("scan", target, "--wait")
    assert result.returncode == 2
    assert_one_line_error(result, named)
    assert result.stdout == ""


# -- scan -----------------------------------------------------------------------------------------


def test_it_scans_one_tag_and_waits_then_status_shows_it_complete(
    sim: Sim, cli: Cli, initial: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    target = next(r for r in initial[1] if r["status"] == "Not Scanned" and r["tags"]
                  and repository_of(r) != "payments/batch")
    name = target["artifact"]
    before = sim.get("/_sim/stats")["scans_triggered"]
    result = cli("scan", name, "--wait")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith(name)]
    assert lines and "Complete" in lines[-1]
    assert sim.get("/_sim/stats")["scans_triggered"] > before
    [after] = cli.json("status", name)
    assert after["digest"] == target["digest"] and after["status"] == "Complete"
    assert after["total"] > 0 and after["scanner"]


def test_it_scans_a_glob_and_reports_each_artifact_in_json(
    cli: Cli, initial: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    project_repo = "payments/batch"
    rows = [r for r in initial[1] if repository_of(r) == project_repo]
    assert len(rows) == 3 and by_status(rows)["Not Scanned"] == 2
    result = cli("scan", f"sim/{project_repo}:1.*", "--wait", "--format", "json")
    assert result.returncode == 0, result.stderr
    scanned = json.loads(result.stdout)
    assert {r["digest"] for r in scanned} == {r["digest"] for r in rows}
    for row in scanned:
        assert row["status"] in ("Complete", "Not Supported")
    assert by_status(scanned)["Not Supported"] == by_status(rows)["Not Supported"] == 1


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sim, Cli]]:
    started = start_sim("--seed", "1", "--projects", "1", "--repositories-per-project", "1",
                        "--artifacts-per-repository", "2", "--scanned-share", "0",
                        "--index-share", "0", "--chart-share", "0", "--scan-seconds", "0.1",
                        "--error-share", "1.0")
    config = write_config(tmp_path_factory.mktemp("failing") / "config.toml", started.url)
    yield started, Cli(config, started.password)
    stop_sim(started)


def test_it_exits_1_on_a_scan_error_and_scan_log_says_why(failing: tuple[Sim, Cli]) -> None:
    _, cli = failing
    result = cli("scan", "sim/library/*", "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    finals = [ln for ln in result.stdout.splitlines() if "Queued" not in ln]
    assert len(finals) == 2 and all(" Error " in ln for ln in finals)
    rows = cli.json("status")
    assert len(rows) == 2 and {r["status"] for r in rows} == {"Error"}
    row = rows[0]
    assert "scan-log" in row["detail"] and row["hint"].startswith("scanwatch scan-log sim/")
    log = cli(*row["hint"].split()[1:])  # the command status suggests works as shown
    assert log.returncode == 0, log.stderr
    assert "[ERROR]" in log.stdout and "scan job" in log.stdout
    doc = cli.json("scan-log", row["artifact"])
    assert doc["digest"] == row["digest"] and doc["status"] == "Error"
    assert doc["log"].rstrip("\n") == log.stdout.rstrip("\n")


# -- run --once, history, findings ------------------------------------------------------------


@pytest.fixture(scope="module")
def first_run(sim: Sim, cli: Cli) -> subprocess.CompletedProcess[str]:
    """`run --once` over the shared simulator (scans what is still unscanned)."""
    return cli("run", "--once")


@pytest.fixture(scope="module")
def status_after_run(cli: Cli, first_run: subprocess.CompletedProcess[str]) -> list[Any]:
    return list(cli.json("status"))


def test_it_runs_once_then_a_second_run_triggers_nothing_new(
    sim: Sim, cli: Cli, first_run: subprocess.CompletedProcess[str],
    status_after_run: list[dict[str, Any]],
) -> None:
    first = first_run
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].split() == ["SCHEDULE", "REGISTRY", "ARTIFACTS", "IMPORTED", "SELECTED",
                                "SCANS", "CHANGES", "RESULT"]
    row = lines[2].split()
    assert row[:3] == ["nightly", "sim", "12"] and row[-1] == "ok"
    assert lines[-1].startswith("alerts: 0 queued")
    assert by_status(status_after_run)["Not Scanned"] == 0
    triggered = sim.get("/_sim/stats")["scans_triggered"]

    second = cli.json("run", "--once")
    assert set(second) >= {"runs", "alerts"}
    [run] = second["runs"]
    [reg] = run["registries"]
    assert run["ok"] and reg["registry"] == "sim" and reg["error"] == ""
    assert reg["triggered"] == 0 and reg["imported"] == 0 and reg["events"] == 0
    assert second["alerts"] == {"queued": 0, "sent": 0, "pending": 0, "dead": 0}
    assert sim.get("/_sim/stats")["scans_triggered"] == triggered


def test_it_shows_the_stored_history_and_open_findings_after_a_run(
    cli: Cli, first_run: subprocess.CompletedProcess[str],
    status_after_run: list[dict[str, Any]],
) -> None:
    assert first_run.returncode == 0
    status = [r for r in status_after_run if r["status"] == "Complete"]
    repo = "library/postgres"
    complete = {r["digest"] for r in status if repository_of(r) == repo}
    assert complete
    entries = cli.json("history", f"sim/{repo}")
    assert {e["digest"] for e in entries if e["status"] == "Success"} == complete
    assert all(e["occurrences"] > 0 and e["report_id"] for e in entries
               if e["status"] == "Success")
    table = cli("history", f"sim/{repo}")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:4] == ["WHEN", "DIGEST", "TAGS", "STATUS"]
    assert table.stdout.count("Success") == len(complete)

    findings = cli.json("findings")
    assert findings
    repos_with_vulns = {repository_of(r) for r in status if r["total"] > 0}
    assert {f"{f['project']}/{f['repository']}" for f in findings} == repos_with_vulns
    for f in findings:
        assert f["registry"] == "sim" and f["vulnerability"] and f["package"] and f["installed"]
        assert f["digests"] and set(f["digests"]) <= {r["digest"] for r in status}
    assert any(f["fixed"] for f in findings) and any(not f["fixed"] for f in findings)


# -- a registry that is down ------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", [("run", "--once"), ("status",)], ids=["run-once", "status"])
def test_it_names_a_registry_that_is_down_in_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    config = write_config(tmp_path / "config.toml", f"http://127.0.0.1:{closed_port()}",
                          extra_registry='max_retries = 1\ntimeout = "5s"')
    result = Cli(config, "unused")(*command)
    assert result.returncode == 1, result.stdout + result.stderr
    assert_one_line_error(result, "registry sim")


def test_it_says_which_secret_is_missing_when_status_cannot_authenticate(
    sim: Sim, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config.toml", sim.url)
    cli = Cli(config, "unused")
    cli.env.pop("SIM_PASSWORD")
    result = cli("status")
    assert result.returncode == 1
    assert "scanwatch: warning: registry[sim].password" in result.stderr
    assert "SIM_PASSWORD" in result.stderr and "Traceback" not in result.stderr
