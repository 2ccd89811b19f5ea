"""`scanwatch doctor` against the real simulator over HTTP, as a subprocess: each fault is said
in words that name the fix, exit 1; a sound set-up passes with exit 0 and triggers no scan."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from runkit import Cli, error_lines, write_config

from daemon.sim import SimOptions, Simulator, start_simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    started = start_simulator(SimOptions(seed=3, projects=2, repositories_per_project=2,
                                         artifacts_per_repository=2, scan_seconds=0.1))
    yield started
    started.stop()


def doctor(directory: Path, url: str, user: str, secret: str) -> tuple[int, dict[str, str], str]:
    cli = Cli(write_config(directory, url, user), secret)
    result = cli("doctor", "--format", "json")
    assert not error_lines(result), result.stderr
    body = json.loads(result.stdout)
    failed = {c["check"]: c["detail"] for c in body["checks"] if not c["ok"]}
    assert body["ok"] is (not failed)
    assert secret not in result.stdout + result.stderr
    return result.returncode, failed, result.stdout


def test_it_passes_a_sound_set_up_and_triggers_no_scan(sim: Simulator, tmp_path: Path) -> None:
    before = httpx.get(sim.url + "/_sim/stats", timeout=30).json()
    code, failed, out = doctor(tmp_path, sim.url, "admin", sim.admin[1])
    assert (code, failed) == (0, {}), out
    assert "per project" in out and "will be created" in out
    after = httpx.get(sim.url + "/_sim/stats", timeout=30).json()
    assert after.get("scans_triggered", 0) == before.get("scans_triggered", 0)


def test_it_names_the_account_when_the_password_is_wrong(sim: Simulator, tmp_path: Path) -> None:
    code, failed, _ = doctor(tmp_path, sim.url, "admin", "not-the-Secret-7")
    assert code == 1
    assert failed["credentials"].startswith("prod-harbor: Harbor accepted no credentials for admin")


def test_it_says_use_http_when_the_server_speaks_plain_http(sim: Simulator,
                                                            tmp_path: Path) -> None:
    code, failed, _ = doctor(tmp_path, sim.url.replace("http://", "https://"), "admin",
                             sim.admin[1])
    assert code == 1
    assert "speaks plain HTTP: use http://" in failed["reach"]


def test_it_names_host_and_port_when_nothing_listens(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, failed, _ = doctor(tmp_path, f"http://127.0.0.1:{port}", "admin", "x")
    assert code == 1
    assert failed["reach"] == f"nothing answers at 127.0.0.1:{port} (connection refused or " \
                              "host unreachable)"


def test_it_says_the_scanner_adapter_is_down(sim: Simulator, tmp_path: Path) -> None:
    httpx.post(sim.url + "/_sim/adapter", json={"up": False}, timeout=30).raise_for_status()
    try:
        code, failed, _ = doctor(tmp_path, sim.url, "admin", sim.admin[1])
    finally:
        httpx.post(sim.url + "/_sim/adapter", json={"up": True}, timeout=30)
    assert code == 1
    assert failed["scanner"].startswith("scanner adapter Trivy is down")
