"""`scanwatch sim serve` as a user runs it: URL first, credentials, clean exit on signals."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_it_prints_its_url_first_and_exits_cleanly(sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "sim", "serve", "--projects", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        admin = proc.stdout.readline().split()
        robot = proc.stdout.readline().split()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/api/v2.0/ping").text == "Pong"
        assert admin == ["admin", "Harbor12345"]
        assert robot[0].startswith("robot$") and robot[0].endswith("+scanwatch")
        projects = httpx.get(url + "/api/v2.0/projects", auth=(robot[0], robot[1]))
        assert projects.status_code == 200 and len(projects.json()) == 1
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_it_explains_every_flag() -> None:
    result = subprocess.run([sys.executable, "-m", "daemon", "sim", "serve", "--help"],
                            capture_output=True, text=True, timeout=30)
    for flag in ("--seed", "--projects", "--repositories-per-project", "--artifacts-per-repository",
                 "--vulnerabilities-per-artifact", "--scanned-share", "--index-share",
                 "--chart-share", "--scan-seconds", "--scanner-concurrency", "--error-share",
                 "--harbor-version", "--trivy-reports", "--port", "--admin-password", "--fault"):
        assert flag in result.stdout


def test_it_rejects_a_bad_fault_in_one_line() -> None:
    result = subprocess.run([sys.executable, "-m", "daemon", "sim", "serve", "--fault", "boom"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "boom" in result.stderr


@pytest.mark.parametrize("retain", [False, True], ids=["scanner-pulls", "retained"])
def test_the_scanners_pulls_set_pull_times_unless_told_to_retain_them(retain: bool) -> None:
    """Every image was scanned before the start: by its scanner's pull, pulled then."""
    flags = ["--scanner-skip-update-pulltime"] if retain else []
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "sim", "serve", "--projects", "1",
                             "--scanned-share", "1.0", "--index-share", "0", "--chart-share",
                             "0", *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        admin = tuple(proc.stdout.readline().split())
        repos = httpx.get(url + "/api/v2.0/repositories", auth=admin).json()
        assert repos and {r["pull_count"] == 0 for r in repos} == {retain}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
