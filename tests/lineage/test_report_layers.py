"""`scanwatch report show FILE --by action` names each vulnerability's layer and build step from
Trivy's own ``Layer.DiffID``, and with ``--base`` whether the base image carries that layer: run
as a user runs it, on Trivy's real reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SCANWATCH = Path(sys.executable).with_name("scanwatch")


def show(*argv: str) -> list[dict[str, Any]]:
    proc = subprocess.run([str(SCANWATCH), "report", "show", *argv, "--by", "action",
                           "--format", "json"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


def test_each_action_names_its_layer_and_the_step_that_made_it(shared_dir: Path) -> None:
    rows = show(str(shared_dir / "fixtures/trivy/alpine-310.json.golden"))
    assert {r["package"] for r in rows} == {"libcrypto1.1", "libssl1.1"}
    for r in rows:
        assert r["source"] == "unknown"  # no base given: the layer, not whose it is
        assert r["build_step"] == ("layer 1 of 1: ADD file:fe64057fbb83dccb960efabbf1cd8777920e"
                                   "f279a7fa8dbca0a8801c651bdf7c in /")


def test_a_layer_the_base_shares_is_the_base_s(shared_dir: Path) -> None:
    trivy = shared_dir / "fixtures/trivy"
    rows = show(str(trivy / "debian-buster.json.golden"), "--base",
                str(trivy / "debian-buster.json.golden"))
    assert {(r["package"], r["source"]) for r in rows} == {("libidn2-0", "base"),
                                                           ("bash", "base")}
    # Another image's base shares no layer with it: everything is the image's own.
    rows = show(str(trivy / "debian-buster.json.golden"), "--base",
                str(trivy / "alpine-310.json.golden"))
    assert {r["source"] for r in rows} == {"own"}
    assert all(r["base_image"] is None for r in rows)


def test_a_harbor_report_has_no_layers_and_says_nothing_of_them(tmp_path: Path,
                                                                shared_dir: Path) -> None:
    from daemon.model import REPORT_MIME_V11

    harbor = {REPORT_MIME_V11: {"generated_at": "2026-01-01T00:00:00Z", "severity": "High",
                                "scanner": {"name": "Trivy", "vendor": "Aqua", "version": "1"},
                                "vulnerabilities": [{"id": "CVE-2024-1", "package": "curl",
                                                     "version": "7.0", "fix_version": "7.1",
                                                     "severity": "High"}]}}
    path = tmp_path / "harbor.json"
    path.write_text(json.dumps(harbor))
    rows = show(str(path))
    assert [(r["package"], r["source"], r["build_step"]) for r in rows] == [("curl", None, None)]
