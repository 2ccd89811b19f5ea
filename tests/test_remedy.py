"""The one grouping of vulnerabilities into remediation actions, shared by alerts and reports."""

from __future__ import annotations

import pytest

from daemon.model import Severity
from daemon.remedy import Entry, Vuln, fix_for, plan

C, H, M, L = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW


@pytest.mark.parametrize(
    ("package", "installed", "fixes", "ecosystem", "expected"),
    [
        ("curl", "7.74.0-1.3+deb11u7", ["7.74.0-1.3+deb11u9", "7.74.0-1.3+deb11u8"], "",
         ("7.74.0-1.3+deb11u9", ())),
        ("busybox", "1.20.1-r2", ["1.20.1-r4", "1.20.1-r10"], "", ("1.20.1-r10", ())),
        ("openssl-libs", "1:1.0.2k-16.el7", ["1:1.0.2k-19.el7", "1:1.0.2k-19.el7"], "rpm",
         ("1:1.0.2k-19.el7", ())),
        ("log4j-core", "2.14.1", ["2.15.0, 2.12.2", "2.16.0, 2.12.3"], "maven", ("2.16.0", ())),
        ("express", "4.17.1", ["5.0.0-beta.1", "4.19.2"], "npm", ("5.0.0-beta.1", ())),
        ("lib", "abc", ["def", "xyz"], "", ("", ("def", "xyz"))),
        ("lib", "1.2.3", ["1.2.3-r4", "1.2.3-1+deb12u1"], "", ("", ("1.2.3-1+deb12u1",
                                                                     "1.2.3-r4"))),
        ("lib", "1.0.0-rc.1", ["1.0.0-rc.2", "1.0.0"], "", ("", ("1.0.0", "1.0.0-rc.2"))),
        ("lib", "1.0.0", ["1.0.0-rc.1", "1.0.1"], "", ("1.0.1", ())),  # all schemes agree
        ("lib", "1.0", [""], "", ("", ())),
    ],
    ids=["debian-security-updates", "alpine-releases", "rpm-epoch", "maven-branches",
         "npm-prerelease-above-release", "hashes", "two-schemes", "semver-or-dpkg",
         "schemes-agree", "no-fix"],
)
def test_it_chooses_the_one_fix_for_every_vulnerability_or_lists_them(
    package: str, installed: str, fixes: list[str], ecosystem: str,
    expected: tuple[str, tuple[str, ...]],
) -> None:
    vulns = [Vuln(f"CVE-{n}", H, fix) for n, fix in enumerate(fixes)]
    assert fix_for(package, installed, vulns, ecosystem) == expected


def test_it_makes_one_action_per_package_version_fixable_first_worst_first() -> None:
    entries = [
        Entry("bash", "5.0-4", Vuln("CVE-2019-18276", L), "deb"),
        Entry("zlib", "1.2.13", Vuln("CVE-3", M, "1.2.14"), member="img-1"),
        Entry("libidn2-0", "2.0.5-1", Vuln("CVE-2019-18224", C, "2.0.5-1+deb10u1"), "deb"),
        Entry("zlib", "1.2.13", Vuln("CVE-4", H, "1.3.1"), member="img-2"),
        Entry("zlib", "1.2.11", Vuln("CVE-4", H, "1.3.1")),
    ]
    actions = plan(entries)
    assert [(a.package, a.installed_version, a.fix_version) for a in actions] == [
        ("libidn2-0", "2.0.5-1", "2.0.5-1+deb10u1"),
        ("zlib", "1.2.13", "1.3.1"),  # two vulnerabilities outrank one of the same severity
        ("zlib", "1.2.11", "1.3.1"),
        ("bash", "5.0-4", ""),  # no fix: last
    ]
    zlib = actions[1]
    assert [v.id for v in zlib.vulnerabilities] == ["CVE-4", "CVE-3"]  # worst first
    assert zlib.members == ("img-1", "img-2")
    assert [a.ecosystem for a in actions] == ["deb", "", "", "deb"]


def test_a_vulnerability_listed_twice_counts_once_the_last_one_winning() -> None:
    [action] = plan([Entry("zlib", "1.2.13", Vuln("CVE-1", M, "1.2.14")),
                     Entry("zlib", "1.2.13", Vuln("CVE-1", H, "1.3.1"))])
    assert action.vulnerabilities == (Vuln("CVE-1", H, "1.3.1"),)
    assert action.fix_version == "1.3.1"


def test_it_never_orders_a_package_version_named_under_two_ecosystems() -> None:
    [action] = plan([Entry("jquery", "3.3.9", Vuln("CVE-1", M, "3.4.0"), "npm"),
                     Entry("jquery", "3.3.9", Vuln("CVE-2", M, "3.5.0"), "maven")])
    assert (action.fix_version, action.candidate_fix_versions, action.ecosystem) == (
        "", ("3.4.0", "3.5.0"), "")
