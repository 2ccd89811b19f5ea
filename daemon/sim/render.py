"""Harbor's JSON, with its habits: nil lists and maps as ``null``, millisecond ``Z`` timestamps,
metadata as ``"true"``/``"false"`` strings, and the report quirks of API-NOTES §10."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote

from daemon.sim import lineage
from daemon.sim.inventory import FINAL, Artifact, Project, Repository, Scan
from daemon.sim.vulndb import RANK, Item

MIME_11 = "application/vnd.security.vulnerability.report; version=1.1"
MIME_10 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
ZERO_TIME = "0001-01-01T00:00:00.000Z"
SCANNER = {"name": "Trivy", "vendor": "Aqua Security"}
STATUS_CODE = {"Pending": 0, "Scheduled": 1, "Running": 2, "Stopped": 3, "Error": 3, "Success": 3}


def ts(wall: float | None) -> str:
    if wall is None:
        return ZERO_TIME
    ms = int(round(wall * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def ts_nano(wall: float) -> str:
    ns = int(wall * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def encode_repo(short: str) -> str:
    return quote(quote(short, safe=""), safe="")


def accepted_mimes(header: str | None) -> list[str]:
    """Harbor keeps the known types in order; nothing valid left → harbor+json 1.0 only."""
    if header is None:
        return [MIME_11, MIME_10]
    wanted = [m.strip() for m in header.split(",")]
    known = [m for m in wanted if m in (MIME_11, MIME_10)]
    return known or [MIME_10]


# ---- projects, repositories -------------------------------------------------------------------
def allowlist(project_id: int, created: float, items: tuple[str, ...] = (),
              expires_at: float | None = None) -> dict[str, Any]:
    return {"id": project_id + 1, "project_id": project_id,
            "expires_at": None if expires_at is None else int(expires_at),
            "items": [{"cve_id": cve} for cve in items],
            "creation_time": ts(created), "update_time": ts(created)}


def project(p: Project) -> dict[str, Any]:
    return {
        "project_id": p.id, "owner_id": 1, "name": p.name, "creation_time": ts(p.creation_time),
        "update_time": ts(p.creation_time), "deleted": False, "owner_name": "admin",
        "togglable": True, "current_user_role_id": 1, "current_user_role_ids": [1],
        "repo_count": len(p.repositories),
        "metadata": {"public": "true" if p.public else "false", "auto_scan": "false",
                     "severity": "low",
                     "prevent_vul": "false",
                     "reuse_sys_cve_allowlist": "true" if p.reuse_system_allowlist else "false",
                     "enable_content_trust": "false"},
        "cve_allowlist": allowlist(p.id, p.creation_time, p.allowlist, p.allowlist_expires_at),
    }


def repository(r: Repository) -> dict[str, Any]:
    tops = r.top_level()
    updated = r.update_time()
    return {"id": r.id, "name": r.name, "project_id": r.project.id, "description": "",
            "artifact_count": len(tops), "pull_count": r.pull_count,
            "creation_time": ts(r.creation_time), "update_time": ts(updated)}


# ---- scan overviews ----------------------------------------------------------------------------
def counts(items: tuple[Item, ...]) -> tuple[dict[str, int], int, str]:
    by_severity: dict[str, int] = {}
    for item in items:
        by_severity[item.severity] = by_severity.get(item.severity, 0) + 1
    fixable = sum(1 for i in items if i.fix_version)
    top = max(by_severity, key=lambda s: RANK[s]) if by_severity else "None"
    return by_severity, fixable, top


def _single(scan: Scan) -> dict[str, Any]:
    end = scan.end_wall
    summary: dict[str, Any] = {
        "report_id": scan.report_id, "scan_status": scan.status,
        "duration": int(end - scan.start_wall) if end is not None else 0,
        "start_time": ts(scan.start_wall), "end_time": ts(end),
        "complete_percent": 100 if scan.status == "Success" else
        (scan.percent if scan.status == "Running" else 0),
        "scanner": {**SCANNER, "version": scan.scanner_version},
    }
    if scan.status == "Success" and scan.items is not None:
        by_severity, fixable, top = counts(scan.items)
        summary["severity"] = top
        summary["summary"] = {"total": len(scan.items), "fixable": fixable, "summary": by_severity}
    return summary


def _merge_status(a: str, b: str) -> str:
    for winner in ("Running", "Stopped", "Success"):
        if winner in (a, b):
            return winner
    return b if STATUS_CODE.get(b, 0) > STATUS_CODE.get(a, 0) else a


def overview(art: Artifact) -> dict[str, Any] | None:
    """The NativeReportSummary of an image, or the merge of an index's children (§5)."""
    if not art.children:
        return _single(art.scan) if art.scan is not None else None
    parts = [_single(c.scan) for c in art.children if c.scan is not None]
    if not parts:
        return None
    ids = "|".join(p["report_id"] for p in parts)
    status = parts[0]["scan_status"]
    for part in parts[1:]:
        status = _merge_status(status, part["scan_status"])
    finished = sum(1 for c in art.children if c.scan is not None and c.scan.status in FINAL)
    starts = [c.scan.start_wall for c in art.children if c.scan is not None]
    ends = [c.scan.end_wall for c in art.children if c.scan is not None and c.scan.end_wall]
    merged: dict[str, Any] = {
        "report_id": base64.b64encode(ids.encode()).decode(), "scan_status": status,
        "duration": sum(p["duration"] for p in parts), "start_time": ts(min(starts)),
        "end_time": ts(max(ends) if ends else None),
        "complete_percent": finished * 100 // len(art.children), "scanner": parts[0]["scanner"],
    }
    summaries = [p for p in parts if "summary" in p]
    if summaries:
        by_severity: dict[str, int] = {}
        for p in summaries:
            for sev, n in p["summary"]["summary"].items():
                by_severity[sev] = by_severity.get(sev, 0) + n
        merged["severity"] = max((p["severity"] for p in summaries), key=lambda s: RANK[s])
        merged["summary"] = {"total": sum(p["summary"]["total"] for p in summaries),
                             "fixable": sum(p["summary"]["fixable"] for p in summaries),
                             "summary": by_severity}
    return merged


# ---- artifacts ---------------------------------------------------------------------------------
def _link(art: Artifact, addition: str) -> dict[str, Any]:
    return {"absolute": False,
            "href": f"/api/v2.0/projects/{art.project.name}/repositories/"
                    f"{encode_repo(art.repo.short)}/artifacts/{art.digest}/additions/{addition}"}


def artifact(art: Artifact, *, with_tag: bool, with_overview: bool, mimes: list[str],
             scannable: bool, host: str = "") -> dict[str, Any]:
    links: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None
    icon = ""
    if art.type == "IMAGE" and not art.children:
        links = {"build_history": _link(art, "build_history")}
        arch, variant = art.platform
        extra = {"architecture": arch, "author": "", "os": "linux",
                 "created": ts(art.created or art.push_time - 60),
                 "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"],
                            "Cmd": ["/bin/sh"]}}
        if variant:
            extra["variant"] = variant
    elif art.type == "CHART":
        name = art.repo.short.rsplit("/", 1)[-1]
        links = {k: _link(art, k) for k in ("values.yaml", "readme.md", "dependencies")}
        version = art.tags[0].name if art.tags else "0.1.0"
        extra = {"apiVersion": "v2", "name": name, "version": version, "appVersion": version,
                 "description": f"A Helm chart for {name}", "type": "application"}
        icon = "sha256:0048c0b5d85ad8eb9f4d0aeb3d5cf2a5b5e3a0c5b0c6f3bbf0a3bbd4eca6e2a1"
    if scannable:
        links = {**(links or {}), "vulnerabilities": _link(art, "vulnerabilities")}
    references = None
    if art.children:
        references = [{"parent_id": art.id, "child_id": c.id, "child_digest": c.digest,
                       "platform": {"architecture": c.platform[0], "os": "linux",
                                    **({"variant": c.platform[1]} if c.platform[1] else {})},
                       "annotations": None, "urls": None} for c in art.children]
    tags = None
    if with_tag and art.tags:
        tags = [{"id": t.id, "repository_id": art.repo.id, "artifact_id": art.id, "name": t.name,
                 "push_time": ts(t.push_time), "pull_time": ts(t.pull_time), "immutable": False}
                for t in art.tags]
    body: dict[str, Any] = {
        "accessories": None, "addition_links": links,
        "annotations": lineage.annotations_of(art, host), "digest": art.digest,
        "extra_attrs": extra, "icon": icon, "id": art.id, "labels": None,
        "manifest_media_type": art.manifest_media_type, "media_type": art.media_type,
        "project_id": art.project.id, "pull_time": ts(art.pull_time),
        "push_time": ts(art.push_time),
        "references": references, "repository_id": art.repo.id, "repository_name": art.repo.name,
        "size": art.size, "tags": tags, "type": art.type,
    }
    if with_overview and scannable and MIME_11 in mimes:
        summary = overview(art)
        if summary is not None:
            body["scan_overview"] = {MIME_11: summary}
    return body


# ---- reports -----------------------------------------------------------------------------------
def item(i: Item, digests: list[str], with_status: bool) -> dict[str, Any]:
    score_v3: float | None = None
    if i.cvss:
        nvd = i.cvss.get("nvd") or {}
        score_v3 = nvd.get("V3Score")
        if score_v3 is None:
            score_v3 = next((v["V3Score"] for v in i.cvss.values() if "V3Score" in v), 0)
    body: dict[str, Any] = {
        "id": i.id, "package": i.package, "version": i.version, "fix_version": i.fix_version,
        "severity": i.severity, "description": i.description, "links": list(i.links) or [""],
        "artifact_digests": digests,
        "preferred_cvss": None if not i.cvss else
        {"score_v3": score_v3, "score_v2": None, "vector_v3": "", "vector_v2": ""},
        "cwe_ids": list(i.cwe_ids) or [""],
        "vendor_attributes": {"CVSS": {k: dict(v) for k, v in i.cvss.items()}} if i.cvss else None,
    }
    if with_status:
        body["status"] = i.status
    return body


def report(art: Artifact, *, with_status: bool, order_seed: int) -> dict[str, Any] | None:
    """The stored report (merged over an index's children), or None while there is none."""
    import random

    targets = art.children or [art]
    done = [t for t in targets if t.scan is not None and t.scan.status == "Success"
            and t.scan.items is not None]
    if not done:
        return None
    merged: dict[tuple[str, str, str], tuple[Item, list[str]]] = {}
    for target in done:
        assert target.scan is not None and target.scan.items is not None
        for i in target.scan.items:
            if i.key in merged:
                if target.digest not in merged[i.key][1]:
                    merged[i.key][1].append(target.digest)
            else:
                merged[i.key] = (i, [target.digest])
    items = [item(i, digests, with_status) for i, digests in merged.values()]
    random.Random(order_seed).shuffle(items)  # Harbor's order follows its DB: unstable
    _, _, top = counts(tuple(i for i, _ in merged.values()))
    last = max(done, key=lambda t: t.scan.end_wall or 0.0)  # type: ignore[union-attr]
    assert last.scan is not None
    return {"generated_at": ts_nano(last.scan.end_wall or 0.0),
            "scanner": {**SCANNER, "version": last.scan.scanner_version},
            "severity": top if merged else "", "vulnerabilities": items}
