"""Real Trivy JSON reports, converted the way harbor-scanner-trivy converts them (API-NOTES §11).

Results are flattened (Target, Class and Type are lost), PkgPath/PURL dropped so the same package
and version found twice collapses into one item, Title dropped, PrimaryURL preferred over
References, the severity mapped to Harbor's words (anything unknown → Unknown).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import ReportFormatError
from daemon.sim.vulndb import Item

_SEVERITY = {"CRITICAL": "Critical", "HIGH": "High", "MEDIUM": "Medium", "LOW": "Low",
             "UNKNOWN": "Unknown"}


@dataclass(frozen=True)
class TrivyReport:
    name: str
    scanner_version: str
    packages: tuple[tuple[str, str], ...]
    items: tuple[Item, ...]


def convert_vulnerability(v: dict[str, Any]) -> Item:
    primary = v.get("PrimaryURL") or ""
    links = (primary,) if primary else tuple(v.get("References") or ())
    cvss = v.get("CVSS") or None
    return Item(
        id=str(v.get("VulnerabilityID", "")),
        package=str(v.get("PkgName", "")),
        version=str(v.get("InstalledVersion", "")),
        fix_version=str(v.get("FixedVersion") or ""),
        severity=_SEVERITY.get(str(v.get("Severity", "")).upper(), "Unknown"),
        description=str(v.get("Description") or ""),
        links=links,
        cwe_ids=tuple(v.get("CweIDs") or ()),
        cvss={k: dict(val) for k, val in cvss.items()} if cvss else None,
        status=str(v.get("Status") or ""),
    )


def convert(data: dict[str, Any], name: str = "report") -> TrivyReport:
    if not isinstance(data, dict) or not isinstance(data.get("Results", []), list):
        raise ReportFormatError(f"{name}: not a Trivy JSON report (no Results list)")
    items: dict[tuple[str, str, str], Item] = {}
    packages: dict[tuple[str, str], None] = {}
    for result in data.get("Results") or ():
        for pkg in result.get("Packages") or ():
            packages[(str(pkg.get("Name", "")), str(pkg.get("Version", "")))] = None
        for raw in result.get("Vulnerabilities") or ():
            item = convert_vulnerability(raw)
            items.setdefault(item.key, item)
            packages[(item.package, item.version)] = None
    meta = data.get("Trivy")
    version = str(meta.get("Version", "")) if isinstance(meta, dict) else ""
    return TrivyReport(name=name, scanner_version=version or "v0.50.1",
                       packages=tuple(packages), items=tuple(items.values()))


def load_dir(directory: Path) -> list[TrivyReport]:
    """Every ``*.json`` / ``*.json.golden`` file of ``directory``, in name order."""
    if not directory.is_dir():
        raise ReportFormatError(f"{directory}: not a directory of Trivy JSON reports")
    files = sorted(p for p in directory.iterdir()
                   if p.is_file() and (p.name.endswith(".json") or p.name.endswith(".json.golden")))
    if not files:
        raise ReportFormatError(f"{directory}: no *.json Trivy reports in it")
    return [load_file(path) for path in files]


def load_file(path: Path) -> TrivyReport:
    """One Trivy JSON report file, converted (named by its file name)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportFormatError(f"{path}: cannot read as JSON ({exc})") from None
    return convert(data, path.name)
