"""The shipped systemd unit verifies clean and is hardened to an exposure of 1.5 or lower."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "scanwatch.service"

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def test_it_has_the_directives_the_daemon_relies_on():
    text = UNIT.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
                 "StateDirectory=scanwatch", "ConfigurationDirectory=scanwatch",
                 "NoNewPrivileges=yes", "PrivateTmp=yes", "PrivateDevices=yes",
                 "ProtectSystem=strict", "CapabilityBoundingSet=\n"):
        assert line in text + "\n", line
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
    assert re.search(r"^LoadCredential=", text, re.M)
    assert re.search(r"^SystemCallFilter=@system-service", text, re.M)


@needs_systemd
def test_it_verifies_without_a_word(tmp_path):
    # On an installed machine ExecStart names the installed command; here, this venv's.
    scanwatch = Path(sys.executable).with_name("scanwatch")
    assert scanwatch.exists(), "the project is not installed in this environment"
    unit = tmp_path / "scanwatch.service"
    unit.write_text(UNIT.read_text().replace("/opt/scanwatch/bin/scanwatch", str(scanwatch)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == "", done.stderr


@needs_systemd
def test_it_rates_1_5_or_lower_in_the_offline_security_review():
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)],
        capture_output=True, text=True, timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout[-500:] + done.stderr
    assert float(match.group(1)) <= 1.5
