"""Shared by the intel tests: Trivy reports in Trivy's own shape that carry the real
CVE-2025-48384 (Git, added to KEV on 2025-08-25)."""

from __future__ import annotations

import json
from pathlib import Path

# Debian 12's git before and after DSA-5956 (CVE-2025-48384 fixed in 1:2.39.5-0+deb12u2).
GIT = ("git", "1:2.39.5-0+deb12u1", "1:2.39.5-0+deb12u2")
GIT_CVE = "CVE-2025-48384"


def trivy_report(path: Path, vulns: list[tuple[str, str, str, str, str]]) -> Path:
    """A ``trivy image --format json`` report (SchemaVersion 2) of (id, pkg, version, fix, sev)."""
    body = {
        "SchemaVersion": 2, "ArtifactName": "debian:12", "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": "debian", "Name": "12.11"}},
        "Results": [{
            "Target": "debian:12 (debian 12.11)", "Class": "os-pkgs", "Type": "debian",
            "Vulnerabilities": [{
                "VulnerabilityID": i, "PkgName": p, "InstalledVersion": v, "FixedVersion": f,
                "Status": "fixed" if f else "affected", "Severity": s,
                "Title": f"{p}: {i}", "PrimaryURL": f"https://avd.aquasec.com/nvd/{i.lower()}",
            } for i, p, v, f, s in vulns]}],
    }
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def git_reports(directory: Path) -> Path:
    """Two images' worth of reports: one with git (and the KEV CVE), one without."""
    directory.mkdir(parents=True, exist_ok=True)
    trivy_report(directory / "bookworm-git.json", [
        (GIT_CVE, *GIT, "HIGH"),
        ("CVE-2025-48385", *GIT, "HIGH"),
        ("CVE-2025-4802", "libc6", "2.36-9+deb12u10", "2.36-9+deb12u11", "HIGH"),
    ])
    trivy_report(directory / "bookworm-slim.json", [
        ("CVE-2025-4802", "libc6", "2.36-9+deb12u10", "2.36-9+deb12u11", "HIGH"),
    ])
    return directory
