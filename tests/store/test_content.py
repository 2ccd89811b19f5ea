"""Stored report contents: the ecosystem is kept, and contents without one keep their old bytes."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

from daemon.harbor.reports import load_report_file, parse_harbor_addition
from daemon.model import REPORT_MIME_V11, Occurrence, Severity
from daemon.store.content import canonical, content_hash, pack, unpack
from daemon.store.db import open_store
from tests.store.store_helpers import REG, T0, artifact, success


def _stored_fields(o: Occurrence) -> Occurrence:
    """What a content keeps of an occurrence (no description, links, CWE ids or CVSS vector:
    content_finding keeps the vector)."""
    return dataclasses.replace(o, description="", links=(), cwe_ids=(), cvss_vector="")


def test_a_content_without_ecosystems_has_the_bytes_written_before_the_field_existed() -> None:
    occs = (
        Occurrence("CVE-2019-18224", "libidn2-0", "2.0.5-1", "2.0.5-1+deb10u1", Severity.CRITICAL,
                   "fixed", 9.8, artifact_digests=("sha256:aa",)),
        Occurrence("CVE-2019-18276", "bash", "5.0-4", "", Severity.LOW, "affected"),
    )
    # The format of every content stored so far: eight fields a row, nothing after them.
    assert canonical(occs) == (
        b'[["CVE-2019-18224","libidn2-0","2.0.5-1","2.0.5-1+deb10u1",5,"fixed",9.8,'
        b'["sha256:aa"]],["CVE-2019-18276","bash","5.0-4","",2,"affected",null,[]]]'
    )


def test_a_report_read_from_harbor_is_stored_in_the_old_format(trivy_fixtures: Path) -> None:
    # Harbor drops the adapter's purl: what the daemon reads from Harbor has no ecosystem, so its
    # content (and hash) is the one stored before ecosystems existed.
    trivy = load_report_file(trivy_fixtures / "alpine-310.json.golden")
    harbor = parse_harbor_addition({REPORT_MIME_V11: {"vulnerabilities": [
        {"id": o.id, "package": o.package, "version": o.version, "fix_version": o.fix_version,
         "severity": o.severity.label, "status": o.status, "links": list(o.links)}
        for o in trivy.occurrences]}})
    assert harbor is not None
    assert {o.ecosystem for o in harbor.occurrences} == {""}
    rows = json.loads(canonical(harbor.occurrences))
    assert len(rows) == 4 and all(len(r) == 8 for r in rows)
    # The same occurrences read from Trivy's own file keep their ecosystem: another content.
    bare = tuple(dataclasses.replace(o, ecosystem="") for o in trivy.occurrences)
    assert content_hash(canonical(trivy.occurrences)) != content_hash(canonical(bare))
    assert all(len(r) == 9 and r[8] == "apk" for r in json.loads(canonical(trivy.occurrences)))


def test_pack_and_unpack_round_trip_the_ecosystem(trivy_fixtures: Path) -> None:
    occs = [o for name in ("debian-buster", "alpine-310", "centos-7", "npm")
            for o in load_report_file(trivy_fixtures / f"{name}.json.golden").occurrences]
    occs.append(Occurrence("CVE-2024-0001", "zz-unknown", "1.0", "1.1", Severity.HIGH))
    occs.sort(key=lambda o: o.key)
    back = unpack(pack(canonical(occs)))
    assert back == tuple(_stored_fields(o) for o in occs)
    assert {o.ecosystem for o in back} == {"deb", "apk", "rpm", "npm", ""}


def test_a_real_store_keeps_the_ecosystem_of_an_imported_report(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    digest = "sha256:" + "1" * 64
    result = success(digest, ["CVE-1:musl:1.1.22-r3:1.1.22-r4"], T0)
    assert result.report is not None
    occ = dataclasses.replace(result.report.occurrences[0], ecosystem="apk")
    result = dataclasses.replace(
        result, report=dataclasses.replace(result.report, occurrences=(occ,)))
    store = open_store(f"sqlite:///{db}")
    try:
        store.record_inventory(REG, [artifact(digest, "1.0")], T0)
        store.record_scan(result, T0)
    finally:
        store.close()
    with sqlite3.connect(db) as conn:
        (blob,) = conn.execute("SELECT occurrences FROM report_content").fetchone()
    assert unpack(blob) == (occ,)
