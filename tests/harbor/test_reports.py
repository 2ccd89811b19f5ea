"""Reading Harbor additions and Trivy JSON into normalised reports (API-NOTES §10, §11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import ReportFormatError
from daemon.harbor.reports import (
    load_report_file,
    normalise,
    parse_harbor_addition,
    parse_report,
    parse_trivy,
)
from daemon.model import REPORT_MIME_HARBOR_V10, REPORT_MIME_V11, Occurrence, Severity

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def item(**over: Any) -> dict[str, Any]:
    """One vulnerability as current Harbor returns it."""
    base: dict[str, Any] = {
        "id": "CVE-2022-1304",
        "package": "e2fsprogs",
        "version": "1.46.2-2",
        "fix_version": "",
        "severity": "High",
        "status": "affected",
        "description": "out-of-bounds read/write",
        "links": ["https://avd.aquasec.com/nvd/cve-2022-1304"],
        "artifact_digests": [DIGEST_A],
        "preferred_cvss": {"score_v3": 7.8, "score_v2": None, "vector_v3": "", "vector_v2": ""},
        "cwe_ids": ["CWE-125", "CWE-787"],
        "vendor_attributes": {
            "CVSS": {
                "nvd": {"V2Score": 6.8, "V3Score": 7.8, "V3Vector": "CVSS:3.1/AV:L"},
                "redhat": {"V3Score": 5.8, "V3Vector": "CVSS:3.1/AV:N"},
            }
        },
    }
    base.update(over)
    return base


def report(items: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "generated_at": "2023-09-08T00:19:11.258693685Z",
        "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "v0.44.0"},
        "severity": "High" if items else "",
        "vulnerabilities": items,
    }
    body.update(over)
    return body


def addition(items: list[dict[str, Any]], mime: str = REPORT_MIME_V11) -> dict[str, Any]:
    return {mime: report(items)}


def only(data: object) -> Occurrence:
    parsed = parse_harbor_addition(data)
    assert parsed is not None
    assert len(parsed.occurrences) == 1
    return parsed.occurrences[0]


@pytest.mark.parametrize(
    ("over", "field", "expected"),
    [
        ({"cwe_ids": [""]}, "cwe_ids", ()),
        ({"cwe_ids": None}, "cwe_ids", ()),
        ({"links": [""]}, "links", ()),
        ({"links": None}, "links", ()),
        ({"fix_version": None}, "fix_version", ""),
        ({"fix_version": "1.46.2-2+deb11u1"}, "fix_version", "1.46.2-2+deb11u1"),
        ({"severity": "Negligible"}, "severity", Severity.NONE),
        ({"severity": "None"}, "severity", Severity.NONE),
        ({"severity": "Catastrophic"}, "severity", Severity.UNKNOWN),
        ({"severity": "CRITICAL"}, "severity", Severity.CRITICAL),
        ({"status": None}, "status", ""),
        ({"artifact_digests": [DIGEST_B, DIGEST_A]}, "artifact_digests", (DIGEST_B, DIGEST_A)),
        (
            {"preferred_cvss": {"score_v3": 0, "vector_v3": ""},
             "vendor_attributes": {"CVSS": {"nvd": {"V2Score": 5.0, "V2Vector": "AV:N"}}}},
            "cvss_v3",
            None,
        ),
        ({"preferred_cvss": None, "vendor_attributes": None}, "cvss_v3", None),
        ({"preferred_cvss": {"score_v3": 0}, "vendor_attributes": None}, "cvss_v3", None),
        ({"preferred_cvss": {"score_v3": None}}, "cvss_v3", 7.8),
        (
            {"preferred_cvss": None,
             "vendor_attributes": {"CVSS": {"ghsa": {"V3Score": 6.1}, "redhat": {"V3Score": 5.0}}}},
            "cvss_v3",
            6.1,
        ),
        ({"preferred_cvss": {"score_v3": 9.1}}, "cvss_v3", 9.1),
    ],
    ids=[
        "cwe_ids-empty-string-list",
        "cwe_ids-null",
        "links-empty-string-list",
        "links-null",
        "fix_version-null",
        "fix_version-set",
        "severity-negligible-is-none",
        "severity-none",
        "severity-unrecognised-is-unknown",
        "severity-any-casing",
        "status-null",
        "artifact-digests-kept",
        "score_v3-zero-without-v3-vector-is-none",
        "null-vendor-attributes-no-score",
        "score_v3-zero-null-vendor-attributes",
        "score_v3-null-derived-from-nvd",
        "score_v3-null-derived-from-first-vendor",
        "score_v3-as-given",
    ],
)
def test_it_normalises_harbor_quirks(over: dict[str, Any], field: str, expected: object) -> None:
    assert getattr(only(addition([item(**over)])), field) == expected


def test_it_keeps_every_field_of_a_plain_item() -> None:
    occ = only(addition([item()]))
    assert occ == Occurrence(
        id="CVE-2022-1304",
        package="e2fsprogs",
        version="1.46.2-2",
        fix_version="",
        severity=Severity.HIGH,
        status="affected",
        cvss_v3=7.8,
        cvss_vector="CVSS:3.1/AV:L",  # nvd's: the vendor of Harbor's score
        description="out-of-bounds read/write",
        links=("https://avd.aquasec.com/nvd/cve-2022-1304",),
        artifact_digests=(DIGEST_A,),
        cwe_ids=("CWE-125", "CWE-787"),
    )


@pytest.mark.parametrize(
    "data",
    [
        {},
        {REPORT_MIME_V11: {}},
        {REPORT_MIME_HARBOR_V10: {}},
    ],
    ids=["empty-body", "empty-under-v1.1", "empty-under-v1.0"],
)
def test_it_reads_an_empty_addition_as_no_report_not_zero_vulnerabilities(data: object) -> None:
    assert parse_harbor_addition(data) is None


@pytest.mark.parametrize(
    "data",
    [
        addition([item()], REPORT_MIME_V11),
        addition([item()], REPORT_MIME_HARBOR_V10),
        report([item()]),
    ],
    ids=["mime-v1.1", "mime-harbor-v1.0", "bare-object"],
)
def test_it_reads_every_shape_of_the_addition_alike(data: object) -> None:
    parsed = parse_harbor_addition(data)
    assert parsed is not None
    assert [o.key for o in parsed.occurrences] == [("CVE-2022-1304", "e2fsprogs", "1.46.2-2")]
    assert (parsed.scanner_name, parsed.scanner_vendor, parsed.scanner_version) == (
        "Trivy", "Aqua Security", "v0.44.0",
    )
    assert parsed.generated_at is not None and parsed.generated_at.year == 2023


def test_it_prefers_the_v1_1_report_when_both_mime_types_are_present() -> None:
    data = {
        REPORT_MIME_HARBOR_V10: report([item(id="CVE-OLD")]),
        REPORT_MIME_V11: report([item(id="CVE-NEW")]),
    }
    assert only(data).id == "CVE-NEW"


@pytest.mark.parametrize(
    "vulnerabilities",
    [[], None],
    ids=["empty-list-with-blank-severity", "clair-era-null"],
)
def test_it_reads_a_clean_report_as_zero_vulnerabilities(vulnerabilities: object) -> None:
    parsed = parse_harbor_addition({REPORT_MIME_V11: report([], vulnerabilities=vulnerabilities)})
    assert parsed is not None
    assert parsed.occurrences == ()


def test_it_sorts_unstable_database_order_by_key_in_plain_string_order() -> None:
    items = [
        item(id="CVE-2019-18276", package="bash"),
        item(id="CVE-2019-1559", package="openssl", version="1.1"),
        item(id="CVE-2019-1559", package="openssl", version="1.0"),
        item(id="CVE-2019-1559", package="libssl"),
    ]
    parsed = parse_harbor_addition(addition(items))
    assert parsed is not None
    assert [o.key for o in parsed.occurrences] == [
        ("CVE-2019-1559", "libssl", "1.46.2-2"),
        ("CVE-2019-1559", "openssl", "1.0"),
        ("CVE-2019-1559", "openssl", "1.1"),
        ("CVE-2019-18276", "bash", "1.46.2-2"),
    ]
    reversed_parse = parse_harbor_addition(addition(list(reversed(items))))
    assert reversed_parse == parsed


def test_it_keeps_an_index_report_merged_across_children() -> None:
    items = [
        item(id="CVE-1", artifact_digests=[DIGEST_A, DIGEST_B]),
        item(id="CVE-2", artifact_digests=[DIGEST_B]),
    ]
    parsed = parse_harbor_addition(addition(items))
    assert parsed is not None
    assert [o.artifact_digests for o in parsed.occurrences] == [(DIGEST_A, DIGEST_B), (DIGEST_B,)]


def test_it_collapses_duplicate_keys_keeping_the_worst_and_the_union() -> None:
    items = [
        item(severity="Medium", fix_version="", artifact_digests=[DIGEST_B], status=""),
        item(severity="Critical", fix_version="2.0", artifact_digests=[DIGEST_A], status="fixed"),
        item(severity="Low", fix_version="", artifact_digests=[DIGEST_A]),
    ]
    occ = only(addition(items))
    assert (occ.severity, occ.fix_version, occ.artifact_digests, occ.status) == (
        Severity.CRITICAL, "2.0", (DIGEST_A, DIGEST_B), "fixed",
    )


def test_it_collapses_keeping_a_fix_version_from_a_lower_severity_duplicate() -> None:
    occ = only(addition([item(severity="High"), item(severity="Low", fix_version="9.9")]))
    assert (occ.severity, occ.fix_version) == (Severity.HIGH, "9.9")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (addition([item(), item(package=None)]), "vulnerabilities[1].package: missing"),
        (addition([{k: v for k, v in item().items() if k != "package"}]),
         "vulnerabilities[0].package: missing"),
        (addition([item(id="")]), "vulnerabilities[0].id: empty"),
        (addition([item(id=42)]), "vulnerabilities[0].id: expected a string, got a number"),
        (addition([item(links="https://x")]), "vulnerabilities[0].links: expected a list"),
        (addition([item(links=[1])]), "vulnerabilities[0].links[0]: expected a string"),
        (addition([item(preferred_cvss={"score_v3": "high"})]),
         "vulnerabilities[0].preferred_cvss.score_v3: expected a number, got a string"),
        (addition([item(vendor_attributes={"CVSS": {"nvd": 7}})]),
         "vulnerabilities[0].vendor_attributes.CVSS.nvd: expected an object"),
        ({REPORT_MIME_V11: {"vulnerabilities": ["CVE-1"]}},
         "vulnerabilities[0]: expected an object, got a string"),
        ({REPORT_MIME_V11: {"vulnerabilities": {}}}, "vulnerabilities: expected a list"),
        ({REPORT_MIME_V11: []}, "report: expected an object, got a list"),
        ({REPORT_MIME_V11: report([], generated_at="yesterday")},
         "generated_at: not an RFC 3339 time"),
        ([item()], "report: expected an object, got a list"),
        ({"errors": [{"code": "NOT_FOUND"}]}, "not a Harbor vulnerability report"),
    ],
    ids=[
        "null-package",
        "missing-package",
        "empty-id",
        "id-not-a-string",
        "links-not-a-list",
        "link-not-a-string",
        "score-not-a-number",
        "vendor-cvss-not-an-object",
        "item-not-an-object",
        "vulnerabilities-not-a-list",
        "report-is-a-list",
        "bad-generated-at",
        "body-is-a-list",
        "harbor-error-body",
    ],
)
def test_it_refuses_malformed_additions_saying_where(data: object, message: str) -> None:
    with pytest.raises(ReportFormatError) as caught:
        parse_harbor_addition(data)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# --- Trivy -------------------------------------------------------------------------------------

FIXTURE_COUNTS = {
    "alpine-310.json.golden": 4,
    "centos-7.json.golden": 3,
    "debian-buster.json.golden": 2,
    "npm.json.golden": 1,
    "sl-micro-rancher5.4.json.golden": 0,
}


@pytest.mark.parametrize(
    ("name", "count"), sorted(FIXTURE_COUNTS.items()), ids=sorted(FIXTURE_COUNTS)
)
def test_it_reads_every_real_trivy_output(trivy_fixtures: Path, name: str, count: int) -> None:
    parsed = load_report_file(trivy_fixtures / name)
    assert len(parsed.occurrences) == count
    assert [o.key for o in parsed.occurrences] == sorted(o.key for o in parsed.occurrences)
    assert parsed.scanner_name == "Trivy"
    assert parsed.generated_at is not None


def test_it_maps_trivy_fields_as_the_harbor_adapter_does(trivy_fixtures: Path) -> None:
    parsed = load_report_file(trivy_fixtures / "debian-buster.json.golden")
    libidn, bash = parsed.occurrences
    assert libidn.key == ("CVE-2019-18224", "libidn2-0", "2.0.5-1")
    assert (libidn.fix_version, libidn.severity, libidn.status) == (
        "2.0.5-1+deb10u1", Severity.CRITICAL, "fixed",
    )
    assert libidn.cvss_v3 == 9.8  # nvd's, not redhat's 5.6
    assert libidn.links == ("https://avd.aquasec.com/nvd/cve-2019-18224",)  # PrimaryURL only
    assert libidn.description.startswith("idn2_to_ascii_4i")  # Description, not Title
    assert libidn.cwe_ids == ("CWE-787",)
    assert (bash.fix_version, bash.severity, bash.status) == ("", Severity.LOW, "affected")


def test_it_keeps_trivy_status_will_not_fix(trivy_fixtures: Path) -> None:
    parsed = load_report_file(trivy_fixtures / "centos-7.json.golden")
    assert {o.package: o.status for o in parsed.occurrences}["bash"] == "will_not_fix"


@pytest.mark.parametrize(
    ("name", "ecosystem"),
    [("alpine-310.json.golden", "apk"), ("centos-7.json.golden", "rpm"),
     ("debian-buster.json.golden", "deb"), ("npm.json.golden", "npm")],
    ids=["alpine", "centos", "debian", "npm"],
)
def test_it_keeps_each_trivy_packages_ecosystem_from_its_purl(
    trivy_fixtures: Path, name: str, ecosystem: str
) -> None:
    parsed = load_report_file(trivy_fixtures / name)
    assert parsed.occurrences
    assert {o.ecosystem for o in parsed.occurrences} == {ecosystem}


@pytest.mark.parametrize(
    ("result", "purl", "expected"),
    [({"Type": "pip", "Class": "lang-pkgs"}, None, "pypi"),
     ({"Type": "ubuntu", "Class": "os-pkgs"}, None, "deb"),
     ({"Type": "gobinary"}, {"PURL": "pkg:golang/golang.org/x/net@v0.1.0"}, "golang"),
     ({"Type": "jar"}, {"PURL": "pkg:maven/org.apache/log4j-core@2.14.1"}, "maven"),
     ({"Type": "made-up"}, None, ""),
     ({}, None, "")],
    ids=["type-pip", "type-ubuntu", "purl-wins", "purl-maven", "unknown-type", "nothing"],
)
def test_it_takes_the_ecosystem_from_the_purl_else_the_result_type(
    result: dict[str, Any], purl: dict[str, str] | None, expected: str
) -> None:
    parsed = parse_trivy(trivy({**result, "Vulnerabilities": [trivy_vuln(PkgIdentifier=purl)]}))
    assert parsed.occurrences[0].ecosystem == expected


def test_it_reads_the_adapters_purl_in_a_harbor_item_where_it_survives() -> None:
    assert only(addition([item(purl="pkg:deb/debian/e2fsprogs@1.46.2-2")])).ecosystem == "deb"
    assert only(addition([item()])).ecosystem == ""  # what Harbor itself returns


def trivy_vuln(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "VulnerabilityID": "CVE-2019-11358",
        "PkgName": "jquery",
        "PkgPath": "app/node_modules/jquery/package.json",
        "InstalledVersion": "3.3.9",
        "FixedVersion": "3.4.0",
        "Status": "fixed",
        "Severity": "MEDIUM",
        "Title": "jquery: prototype pollution",
        "Description": "jQuery before 3.4.0 mishandles jQuery.extend",
        "References": ["https://a.example/1", "https://b.example/2"],
        "CVSS": {"redhat": {"V3Score": 5.6}, "ghsa": {"V3Score": 6.1}},
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def trivy(*results: dict[str, Any]) -> dict[str, Any]:
    return {"SchemaVersion": 2, "Trivy": {"Version": "0.56.1"}, "Results": list(results)}


def test_it_flattens_and_collapses_trivy_results_like_the_adapter() -> None:
    data = trivy(
        {"Target": "app/package-lock.json", "Vulnerabilities": [trivy_vuln(Severity="LOW")]},
        {"Target": "os", "Class": "os-pkgs"},  # no Vulnerabilities key at all
        {"Target": "web/package-lock.json", "Vulnerabilities": [trivy_vuln(PkgPath="web")]},
        {"Target": "empty", "Vulnerabilities": None},
    )
    parsed = parse_trivy(data)
    assert len(parsed.occurrences) == 1
    occ = parsed.occurrences[0]
    assert occ.severity is Severity.MEDIUM
    assert occ.links == ("https://a.example/1", "https://b.example/2")  # no PrimaryURL
    assert occ.cvss_v3 == 5.6  # no nvd: the first vendor with a V3Score
    assert parsed.scanner_version == "0.56.1"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("CRITICAL", Severity.CRITICAL), ("UNKNOWN", Severity.UNKNOWN),
     ("NEGLIGIBLE", Severity.UNKNOWN), (None, Severity.UNKNOWN)],
    ids=["critical", "unknown", "other-is-unknown-as-in-the-adapter", "missing"],
)
def test_it_maps_trivy_severities(severity: str | None, expected: Severity) -> None:
    parsed = parse_trivy(trivy({"Vulnerabilities": [trivy_vuln(Severity=severity)]}))
    assert parsed.occurrences[0].severity is expected


def test_it_reads_a_trivy_report_without_results_as_clean() -> None:
    parsed = parse_report({"SchemaVersion": 2, "ArtifactName": "scratch"})
    assert parsed is not None and parsed.occurrences == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (trivy({"Vulnerabilities": [trivy_vuln(PkgName=None)]}),
         "Results[0].Vulnerabilities[0].PkgName: missing"),
        (trivy({}, {"Vulnerabilities": "none"}), "Results[1].Vulnerabilities: expected a list"),
        ({"SchemaVersion": 2, "Results": {}}, "Results: expected a list"),
        ({"SchemaVersion": 1, "Results": []}, "SchemaVersion: unsupported Trivy schema 1"),
    ],
    ids=["missing-pkgname", "vulnerabilities-not-a-list", "results-not-a-list", "schema-1"],
)
def test_it_refuses_malformed_trivy_reports_saying_where(data: object, message: str) -> None:
    with pytest.raises(ReportFormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_report(data)


def test_normalise_is_idempotent() -> None:
    once = normalise(
        [Occurrence("B", "p", "1"), Occurrence("A", "p", "1"), Occurrence("A", "p", "1")]
    )
    assert normalise(once) == once
    assert [o.key for o in once] == [("A", "p", "1"), ("B", "p", "1")]


# --- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("report.txt", json.dumps(addition([item()]))),
        ("harbor.json.golden", json.dumps(report([item()]))),
        ("trivy-output", json.dumps(trivy({"Vulnerabilities": [trivy_vuln()]}))),
        ("with-bom.json", "\ufeff" + json.dumps(addition([item()]))),
    ],
    ids=["harbor-as-txt", "bare-as-golden", "trivy-no-extension", "utf8-bom"],
)
def test_it_recognises_the_format_from_content_whatever_the_name(
    tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert len(load_report_file(path).occurrences) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{\n  "a": 1,\n    x\n}', "not JSON (line 3, column 5: Expecting property name"),
        (json.dumps(addition([item()]))[:120], "not JSON (line 1"),
        ("", "not JSON (line 1, column 1"),
        ("[1, 2]", "a JSON list, not a report object"),
        ('"text"', "report: expected an object, got a string"),
        ("{}", "an empty addition ({}): the scan has not finished"),
        ('{"name": "x"}',
         "neither a Harbor nor a Trivy report (no 'vulnerabilities' or 'Results')"),
        (json.dumps(addition([item(package=None)])), "vulnerabilities[0].package: missing"),
    ],
    ids=["not-json", "truncated", "empty-file", "a-list", "a-string", "empty-object",
         "neither-format", "missing-package"],
)
def test_it_refuses_bad_files_on_one_line_naming_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportFormatError) as caught:
        load_report_file(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


def test_it_refuses_a_missing_or_binary_file(tmp_path: Path) -> None:
    with pytest.raises(ReportFormatError, match="cannot read"):
        load_report_file(tmp_path / "absent.json")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ReportFormatError, match="not UTF-8"):
        load_report_file(binary)
