"""Version order per ecosystem, pinned on real versions and on each scheme's reference vectors.

Each row is (a, b, expected order of a against b, where the pair comes from). Debian rows are
also put to ``dpkg --compare-versions`` itself, and RPM rows to rpm's own ``rpm.vercmp``, where
those are installed on the machine.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from daemon.versions import compare, highest, lowest_fix, resolve

MADISON = "apt-cache madison, Debian 12 bookworm and bookworm-security"
DPKG_INSTALLED = "dpkg-query -W on this Debian 12 machine against apt-cache madison"
FIXTURE = "shared/fixtures/trivy"
APK_DATA = "apk-tools test/unit/version.data (alpinelinux/apk-tools 90b974fd)"
RPMVERCMP_AT = "rpm tests/rpmvercmp.at (rpm-software-management/rpm)"
PEP440 = "PEP 440, 'Summary of permitted suffixes and relative ordering'"
SEMVER_SPEC = "semver.org 2.0.0 §11"
GO_SEMVER = "golang.org/x/mod semver/semver_test.go"
GO_REF = "go.dev/ref/mod#pseudo-versions"
MAVEN_TEST = "apache/maven ComparableVersionTest.java"
GEM_TEST = "rubygems test/rubygems/test_gem_version.rb"
NUGET_TEST = "NuGet.Client VersionComparerTests.cs"
NUGET_DOC = "learn.microsoft.com nuget package-versioning (4-part, normalised)"
COMPOSER_TEST = "composer/semver tests/ComparatorTest.php"
PHP_DOC = "php.net version_compare (special forms), Composer VersionParser::normalize"

TABLE: dict[str, list[tuple[str, str, int, str]]] = {
    "deb": [
        ("7.74.0-1.3+deb11u8", "7.74.0-1.3+deb11u9", -1, "issue 10: curl, Debian 11 security"),
        ("7.88.1-10+deb12u5", "7.88.1-10+deb12u15", -1, MADISON + ": curl"),
        ("3.0.17-1~deb12u2", "3.0.20-1~deb12u2", -1, MADISON + ": openssl"),
        ("3.0.20-1~deb12u2", "3.0.22-1~deb12u2", -1, MADISON + ": openssl"),
        ("2.36-9+deb12u7", "2.36-9+deb12u14", -1, MADISON + ": libc6"),
        ("2026b-0+deb12u1", "2026f-0+deb12u1", -1, MADISON + ": tzdata"),
        ("2025b-0+deb12u1", "2026b-0+deb12u1", -1, MADISON + ": tzdata"),
        ("252.38-1~deb12u1", "252.39-1~deb12u2", -1, MADISON + ": systemd"),
        ("5.36.0-7+deb12u3", "5.36.0-7+deb12u4", -1, MADISON + ": perl"),
        ("1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+deb12u1", -1, MADISON + ": zlib1g (epoch)"),
        ("2.9.14+dfsg-1.3~deb12u4", "2.9.14+dfsg-1.3~deb12u6", -1, MADISON + ": libxml2"),
        ("6.1.176-1", "6.1.192-3", -1, MADISON + ": linux-image-amd64"),
        ("1.9.13p3-1+deb12u2", "1.9.13p3-1+deb12u4", -1, MADISON + ": sudo"),
        ("1:2.39.5-0+deb12u2", "1:2.39.5-0+deb12u3", -1, MADISON + ": git (epoch)"),
        ("5.2.15-2+b8", "5.2.15-2+b13", -1, DPKG_INSTALLED + ": bash (binNMU)"),
        ("2.0.5-1", "2.0.5-1+deb10u1", -1, FIXTURE + "/debian-buster: libidn2-0 fix"),
        ("3.0.15-1~deb12u1", "3.0.15-1", -1, "dpkg: ~ sorts before the end (backport below)"),
        ("1.0~rc1-1", "1.0-1", -1, "dpkg: ~ pre-release"),
        ("1:1.0-1", "2.0-1", 1, "dpkg: the epoch outranks the version"),
        ("1.0-1ubuntu0.1", "1.0-1", 1, "dpkg: Ubuntu security revision"),
        ("2:9.0.1378-2+deb12u2", "9.1.0-1", 1, MADISON + ": vim (epoch 2)"),
    ],
    "apk": [
        ("1.20.1-r4", "1.20.1-r10", -1, "issue 10: release numbers compare as numbers"),
        ("1.1.1c-r0", "1.1.1d-r0", -1, FIXTURE + "/alpine-310: libssl1.1 CVE-2019-1549"),
        ("1.1.1d-r0", "1.1.1d-r2", -1, FIXTURE + "/alpine-310: libssl1.1 CVE-2019-1551"),
        ("1.1.1c-r0", "1.1.1d-r2", -1, FIXTURE + "/alpine-310: installed → fix"),
        ("2.2.39-r1", "1.0.4-r3", 1, APK_DATA),
        ("1.0.4-r3", "1.0.4-r4", -1, APK_DATA),
        ("1.1", "1.1_alpha1", 1, APK_DATA + " (_alpha is a pre-release)"),
        ("0.8_beta1", "0.8_beta2", -1, APK_DATA),
        ("2.3.0b-r1", "2.3.0b-r2", -1, APK_DATA + " (letter after the number)"),
        ("3.1_p16", "3.1_p17", -1, APK_DATA + " (_p is a patch level)"),
        ("1.2.2-r1", "1.2.2", 1, APK_DATA),
        ("9.3.4-r2", "9.3.4", 1, APK_DATA),
        ("1.0_p10-r0", "1.0_p9-r0", 1, APK_DATA),
        ("1.3_pre1-r1", "1.3.2", -1, APK_DATA),
        ("0.1.0_alpha_pre2", "0.1.0_alpha", -1, APK_DATA),
        ("6.0_pre1", "6.0", -1, APK_DATA),
        ("6.0_p1", "6.0", 1, APK_DATA),
        ("1.2.9.1-r1", "1.2.9.1", 1, APK_DATA),
        ("0.2.0-r1", "0.2.0-r1", 0, APK_DATA),
    ],
    "rpm": [
        ("1:1.0.2k-16.el7", "1:1.0.2k-19.el7", -1, FIXTURE + "/centos-7: openssl-libs fix"),
        ("1.0.2k-16.el7", "1:1.0.2k-16.el7", -1, "rpm: a missing epoch is 0"),
        ("1.0-1.el8_4", "1.0-1.el8_10", -1, "rpm: .elN_M update streams compare as numbers"),
        ("4.2.46-31.el7", "4.2.46-34.el7", -1, FIXTURE + "/centos-7: bash release"),
        ("1.0", "2.0", -1, RPMVERCMP_AT),
        ("2.0.1", "2.0", 1, RPMVERCMP_AT),
        ("2.0.1a", "2.0.1", 1, RPMVERCMP_AT),
        ("5.5p1", "5.5p10", -1, RPMVERCMP_AT),
        ("10xyz", "10.1xyz", -1, RPMVERCMP_AT),
        ("xyz.4", "8", -1, RPMVERCMP_AT + " (numbers outrank letters)"),
        ("6.0.rc1", "6.0", 1, RPMVERCMP_AT),
        ("10b2", "10a1", 1, RPMVERCMP_AT),
        ("1.0a", "1.0aa", -1, RPMVERCMP_AT),
        ("10.0001", "10.1", 0, RPMVERCMP_AT + " (leading zeros)"),
        ("4.999.9", "5.0", -1, RPMVERCMP_AT),
        ("2.0", "2_0", 0, RPMVERCMP_AT),
        ("1.0~rc1", "1.0", -1, RPMVERCMP_AT + " (tilde)"),
        ("1.0~rc1~git123", "1.0~rc1", -1, RPMVERCMP_AT),
    ],
    "pypi": [
        ("5.2rc1", "5.2", -1, "PyPI Django version list"),
        ("5.2a1", "5.2b1", -1, "PyPI Django version list"),
        ("5.2b1", "5.2rc1", -1, "PyPI Django version list"),
        ("4.2.9", "4.2.10", -1, "PyPI Django version list"),
        ("2.0.0a4", "2.0.2", -1, "PyPI urllib3 version list"),
        ("1.26.20", "2.0.0a1", -1, "PyPI urllib3 version list"),
        ("1.24", "1.24.1", -1, "PyPI urllib3 version list"),
        ("2.3.6", "2.3.7.post1", -1, "PyPI pathlib2 version list"),
        ("1.0", "1.0.0", 0, "PEP 440: trailing zeros are insignificant"),
        ("1.dev0", "1.0.dev456", -1, PEP440),
        ("1.0.dev456", "1.0a1", -1, PEP440),
        ("1.0a2.dev456", "1.0a12.dev456", -1, PEP440),
        ("1.0b2.post345.dev456", "1.0b2.post345", -1, PEP440),
        ("1.0rc1.dev456", "1.0rc1", -1, PEP440),
        ("1.0+abc.5", "1.0+abc.7", -1, PEP440 + " (local versions)"),
        ("1.0.post456.dev34", "1.0.post456", -1, PEP440),
        ("1.0.post456", "1.0.15", -1, PEP440),
        ("1!1.0", "2.0", 1, "PEP 440: epochs"),
    ],
    "npm": [
        ("3.3.9", "3.4.0", -1, FIXTURE + "/npm: jquery CVE-2019-11358"),
        ("5.0.0-alpha.8", "5.0.0-beta.1", -1, "npm registry: express versions"),
        ("5.0.0-beta.3", "5.0.0", -1, "npm registry: express versions"),
        ("4.21.2", "5.0.0-alpha.1", -1, "npm registry: express versions"),
        ("3.9.0", "3.10.0", -1, "npm registry: express versions"),
        ("7.0.0-beta.5", "7.0.0-beta.31", -1, "npm registry: @babel/core versions"),
        ("7.0.0-beta.56", "7.0.0-rc.0", -1, "npm registry: @babel/core versions"),
        ("7.0.0-rc.4", "7.0.0", -1, "npm registry: @babel/core versions"),
        ("1.0.0-alpha", "1.0.0-alpha.1", -1, SEMVER_SPEC),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta", -1, SEMVER_SPEC),
        ("1.0.0-alpha.beta", "1.0.0-beta", -1, SEMVER_SPEC),
        ("1.0.0-beta.2", "1.0.0-beta.11", -1, SEMVER_SPEC),
        ("1.0.0-rc.1", "1.0.0", -1, SEMVER_SPEC),
        ("2.0.0", "2.1.0", -1, SEMVER_SPEC),
        ("1.0.0+build.1", "1.0.0+build.2", 0, SEMVER_SPEC + " §10: build metadata is ignored"),
        ("v1.2.3", "1.2.3", 0, "node-semver accepts a leading v"),
        ("1.2.3.4", "1.2.3.5", None, "not semver: npm cannot order it"),
    ],
    "cargo": [
        ("1.0.0-alpha", "1.0.0-alpha.1", -1, SEMVER_SPEC),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta", -1, SEMVER_SPEC),
        ("1.0.0-alpha.beta", "1.0.0-beta", -1, SEMVER_SPEC),
        ("1.0.0-beta", "1.0.0-beta.2", -1, SEMVER_SPEC),
        ("1.0.0-beta.2", "1.0.0-beta.11", -1, SEMVER_SPEC),
        ("1.0.0-beta.11", "1.0.0-rc.1", -1, SEMVER_SPEC),
        ("1.0.0-rc.1", "1.0.0", -1, SEMVER_SPEC),
        ("1.0.0", "2.0.0", -1, SEMVER_SPEC),
        ("2.0.0", "2.1.0", -1, SEMVER_SPEC),
        ("2.1.0", "2.1.1", -1, SEMVER_SPEC),
        ("0.10.55", "0.10.60", -1, "crates.io openssl 0.10.x releases"),
        ("1.18.4", "1.20.4", -1, "crates.io tokio LTS releases"),
        ("0.9.9", "0.10.0", -1, "semver: numeric, not lexical"),
        ("1.0.0-alpha.10", "1.0.0-alpha.2", 1, SEMVER_SPEC + ": numeric identifiers"),
        ("1.0.0-Alpha", "1.0.0-alpha", -1, SEMVER_SPEC + ": ASCII order"),
        ("1.0", "1.0.0", None, "not semver: Cargo needs three parts"),
    ],
    "golang": [
        ("v1.0.0-alpha", "v1.0.0-alpha.1", -1, GO_SEMVER),
        ("v1.0.0-beta.2", "v1.0.0-beta.11", -1, GO_SEMVER),
        ("v1.0.0-rc.1", "v1.0.0", -1, GO_SEMVER),
        ("v1.2.0", "v1.2.3-456", -1, GO_SEMVER),
        ("v1.2.3-456", "v1.2.3-456.789", -1, GO_SEMVER),
        ("v1.2.3-456-789", "v1.2.3-456a", -1, GO_SEMVER),
        ("v1.2.3-pre", "v1.2.3-pre.1", -1, GO_SEMVER),
        ("v1.2.3-zzz", "v1.2.3", -1, GO_SEMVER),
        ("v1.2.3+meta", "v1.2.3", 0, GO_SEMVER + ": build metadata is ignored"),
        ("v2.0.0+incompatible", "v2.0.0", 0, GO_REF + " (+incompatible)"),
        ("v2.0.0+incompatible", "v1.9.0", 1, GO_REF + " (+incompatible)"),
        ("v0.0.0-20190308221718-c2843e01d9a2", "v0.0.0-20200202094626-16171245cfb2", -1,
         GO_REF + ": pseudo-versions order by time"),
        ("v0.0.0-20190308221718-c2843e01d9a2", "v0.1.0", -1, GO_REF),
        ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3", 1, GO_REF + ": after v1.2.3"),
        ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4", -1, GO_REF + ": before v1.2.4"),
        ("v1.20.4", "1.20.5", -1, "Trivy stdlib: installed with v, fix without"),
    ],
    "maven": [
        ("1-alpha2", "1-alpha-123", -1, MAVEN_TEST),
        ("1-beta-2", "1-beta123", -1, MAVEN_TEST),
        ("1-m2", "1-m11", -1, MAVEN_TEST),
        ("1-rc", "1-cr2", -1, MAVEN_TEST),
        ("1-SNAPSHOT", "1", -1, MAVEN_TEST),
        ("1", "1-sp", -1, MAVEN_TEST),
        ("1-sp123", "1-abc", -1, MAVEN_TEST),
        ("1-1-snapshot", "1-1", -1, MAVEN_TEST),
        ("2.0", "2-1", -1, MAVEN_TEST),
        ("2.0.123", "2.1.0", -1, MAVEN_TEST),
        ("2.1-c", "2.1-1", -1, MAVEN_TEST),
        ("11.m11", "11", -1, MAVEN_TEST),
        ("1", "1.0.0", 0, MAVEN_TEST),
        ("1ga", "1", 0, MAVEN_TEST + " (aliases)"),
        ("1cr", "1rc", 0, MAVEN_TEST + " (aliases)"),
        ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1", -1, MAVEN_TEST),
        ("2.0.1-xyz", "2.0.1-123", -1, MAVEN_TEST),
        ("2.12.6.1", "2.12.7", -1, "Maven Central jackson-databind releases"),
    ],
    "gem": [
        ("1.0", "1.0.0", 0, GEM_TEST),
        ("1.0", "1.0.a", 1, GEM_TEST),
        ("1.8.2", "0.0.0", 1, GEM_TEST),
        ("1.8.2", "1.8.2.a", 1, GEM_TEST),
        ("1.8.2.b", "1.8.2.a", 1, GEM_TEST),
        ("1.8.2.a10", "1.8.2.a9", 1, GEM_TEST),
        ("1.2.b1", "1.2.b.1", 0, GEM_TEST),
        ("1.0.0-alpha", "1.0.0-alpha.1", -1, GEM_TEST),
        ("1.0.0-alpha.1", "1.0.0-beta.2", -1, GEM_TEST),
        ("1.0.0-beta.2", "1.0.0-beta.11", -1, GEM_TEST),
        ("1.0.0-beta.11", "1.0.0-rc.1", -1, GEM_TEST),
        ("1.0.0-rc.1", "1.0.0", -1, GEM_TEST),
        ("1.1.rc10", "1.1", -1, GEM_TEST),
        ("1.9.3.alpha.5", "1.9.3", -1, GEM_TEST),
        ("5.0.0", "5.0.0.1", -1, "rubygems.org rails 5.0.0.1 (a four-part release)"),
        ("6.1.7.9", "6.1.7.10", -1, "rubygems.org rails 6.1.7.x releases"),
    ],
    "nuget": [
        ("1.0.0-BETA", "1.0.0-beta", 0, NUGET_TEST + " (case-insensitive)"),
        ("1.0.0-BETA+AA", "1.0.0-beta+aa", 0, NUGET_TEST),
        ("1.0.0-BETA.X.y.5.77.0+AA", "1.0.0-beta.x.y.5.77.0+aa", 0, NUGET_TEST),
        ("0.0.0", "1.0.0", -1, NUGET_TEST),
        ("1.0.0", "1.1.0", -1, NUGET_TEST),
        ("1.0.0", "1.0.1", -1, NUGET_TEST),
        ("1.999.9999", "2.1.1", -1, NUGET_TEST),
        ("1.0.0-BETA", "1.0.0-beta2", -1, NUGET_TEST),
        ("1.0.0-beta+AA", "1.0.0+aa", -1, NUGET_TEST),
        ("1.0.0-BETA", "1.0.0-beta.1+AA", -1, NUGET_TEST),
        ("1.0.0-BETA.X.y.5.77.0+AA", "1.0.0-beta.x.y.5.79.0+aa", -1, NUGET_TEST),
        ("1.0.0-BETA.X.y.5.79.0+AA", "1.0.0-beta.x.y.5.790.0+abc", -1, NUGET_TEST),
        ("1.0.0.1", "1.0.0", 1, NUGET_DOC),
        ("1.0", "1.0.0.0", 0, NUGET_DOC),
        ("4.7.2", "4.7.10", -1, "nuget.org: numeric, not lexical"),
    ],
    "composer": [
        ("1.25.0", "1.24.0", 1, COMPOSER_TEST),
        ("1.25.0", "1.25.0", 0, COMPOSER_TEST),
        ("1.25.0", "1.26.0", -1, COMPOSER_TEST),
        ("1.0.0", "1.2-dev", -1, COMPOSER_TEST),
        ("1.25.0-beta2.1", "1.25.0-b.3", -1, COMPOSER_TEST),
        ("1.25.0-b2.1", "1.25.0beta.3", -1, COMPOSER_TEST),
        ("1.25.0-b-2.1", "1.25.0-rc", -1, COMPOSER_TEST),
        ("1.25.0-beta2.1", "1.25.0-b.2.1", 0, COMPOSER_TEST),
        ("1.25.0beta2.1", "1.25.0-b2.1", 0, COMPOSER_TEST),
        ("1.0.0-dev", "1.0.0-alpha", -1, PHP_DOC),
        ("1.0.0-beta2", "1.0.0-RC1", -1, PHP_DOC),
        ("1.0.0-RC1", "1.0.0", -1, PHP_DOC),
        ("1.0.0", "1.0.0-p1", -1, PHP_DOC + " (pl/p is a patch level)"),
        ("2.4.1.1", "2.4.1.2", -1, PHP_DOC + " (four parts)"),
        ("v5.4.21", "5.4.22", -1, "composer.lock tag (v…) against a fix"),
        ("5.4", "5.4.0", 0, PHP_DOC + " (normalised to four parts)"),
        ("dev-main", "1.0.0", None, "a branch cannot be ordered"),
    ],
}

ROWS = [(eco, a, b, want, source) for eco, rows in TABLE.items() for a, b, want, source in rows]
IDS = [f"{eco}:{a}~{b}" for eco, a, b, _, _ in ROWS]


@pytest.mark.parametrize("ecosystem", sorted(TABLE))
def test_the_table_has_fifteen_pairs_per_scheme(ecosystem: str) -> None:
    assert len(TABLE[ecosystem]) >= 15


@pytest.mark.parametrize(("ecosystem", "a", "b", "expected", "source"), ROWS, ids=IDS)
def test_it_orders_versions_as_the_scheme_does(
    ecosystem: str, a: str, b: str, expected: int | None, source: str
) -> None:
    assert compare(a, b, ecosystem=ecosystem) == expected, source
    assert compare(b, a, ecosystem=ecosystem) == (None if expected is None else -expected)


def _dpkg(a: str, op: str, b: str) -> bool:
    done = subprocess.run(["dpkg", "--compare-versions", a, op, b], capture_output=True,
                          check=False)
    return done.returncode == 0


DEB = [(a, b, want) for a, b, want, _ in TABLE["deb"]]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed here")
@pytest.mark.parametrize(("a", "b", "expected"), DEB, ids=[f"{a}~{b}" for a, b, _ in DEB])
def test_debian_rows_agree_with_dpkg_itself(a: str, b: str, expected: int) -> None:
    truth = -1 if _dpkg(a, "lt", b) else (0 if _dpkg(a, "eq", b) else 1)
    assert truth == expected
    assert compare(a, b, ecosystem="deb") == truth
    assert compare(a, b) == truth  # also with nothing but the versions to go by


RPM = [(a, b, want) for a, b, want, _ in TABLE["rpm"]]


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed here")
@pytest.mark.parametrize(("a", "b", "expected"), RPM, ids=[f"{a}~{b}" for a, b, _ in RPM])
def test_rpm_rows_agree_with_rpm_itself(a: str, b: str, expected: int) -> None:
    done = subprocess.run(["rpm", "--eval", f'%{{lua: print(rpm.vercmp("{a}", "{b}"))}}'],
                          capture_output=True, text=True, check=True)
    assert int(done.stdout.strip()) == expected
    assert compare(a, b, ecosystem="rpm") == expected


@pytest.mark.parametrize(
    ("package", "a", "b", "expected"),
    [
        ("curl", "7.74.0-1.3+deb11u8", "7.74.0-1.3+deb11u9", -1),
        ("busybox", "1.20.1-r4", "1.20.1-r10", -1),
        ("openssl-libs", "1.1.1k-1.el8", "1.1.1k-2.el8", -1),
        ("golang.org/x/net", "v0.0.0-20190308221718-c2843e01d9a2", "0.17.0", -1),
        ("github.com/docker/docker", "v20.10.7+incompatible", "20.10.11+incompatible", -1),
        ("org.apache.logging.log4j:log4j-core", "2.14.1", "2.15.0", -1),
        ("org.springframework:spring-core", "5.3.17", "5.3.18", -1),
        ("symfony/http-kernel", "v5.4.21", "5.4.22", -1),
        ("bash", "5.0-4", "5.0-10", -1),
        ("jinja2", "2.11.3", "3.1.4", -1),
        ("x", "v2.1.0", "2.0.9", 1),
        ("x", "1:1.0", "2.0", 1),
        ("x", "1.0.0-rc.1", "1.0.0", None),  # semver: older; dpkg: newer
        ("x", "2.0.1a", "2.0.1", None),  # rpm and dpkg: newer; PEP 440: a pre-release
        ("x", "1.0", "1.0.0", None),  # PEP 440: equal; dpkg and rpm: older
        ("x", "1.2.3-r4", "1.2.3-1+deb12u1", None),  # an Alpine and a Debian version
        ("x", "abc123", "1.0", None),
        ("x", "latest", "stable", None),
    ],
    ids=["deb-marks", "apk-marks", "rpm-marks", "go-module-name", "go-incompatible",
         "maven-coordinates", "maven-coordinates-2", "composer-name", "plain-revisions",
         "plain-dotted", "v-prefix", "epoch", "semver-or-dpkg", "openssl-letter-or-pep440",
         "trailing-zero", "two-schemes", "hash", "words"],
)
def test_without_an_ecosystem_it_infers_one_or_refuses(
    package: str, a: str, b: str, expected: int | None
) -> None:
    assert compare(a, b, package=package) == expected
    assert compare(b, a, package=package) == (None if expected is None else -expected)


@pytest.mark.parametrize(
    ("ecosystem", "package", "versions", "expected"),
    [
        ("npm", "x", ["1.0.0"], "npm"),
        ("", "curl", ["7.74.0-1.3+deb11u8", "7.74.0-1.3+deb11u9"], "deb"),
        ("", "musl", ["1.1.22-r3", "1.1.22-r4"], "apk"),
        ("", "golang.org/x/text", ["v0.3.7"], "golang"),
        ("", "jquery", ["3.3.9", "3.4.0"], ""),
        ("", "x", ["1.2.3-r4", "1.2.3-1+deb12u1"], None),
    ],
    ids=["report-says", "deb", "apk", "go-module", "nothing-tells", "conflict"],
)
def test_it_resolves_the_ecosystem_from_the_report_else_from_the_versions(
    ecosystem: str, package: str, versions: list[str], expected: str | None
) -> None:
    assert resolve(ecosystem, package, versions) == expected


def test_the_ecosystem_decides_what_a_dash_means() -> None:
    assert compare("1.0.0-rc.1", "1.0.0", ecosystem="npm") == -1
    assert compare("1.0.0-rc.1", "1.0.0", ecosystem="deb") == 1


@pytest.mark.parametrize(
    ("installed", "fix", "ecosystem", "expected"),
    [
        ("1.2.3", "1.2.5", "", "1.2.5"),
        ("1.2.3", "2.0.1, 1.2.5", "", "1.2.5"),
        ("2.0.0", "1.2.5, 2.0.1", "", "2.0.1"),
        ("1.2.3", "abc, 1.2.5", "", None),
        ("2.14.1", "2.3.1, 2.12.2, 2.15.0", "maven", "2.15.0"),
        ("1.20.1-r4", "1.20.1-r10, 1.21.0-r0", "apk", "1.20.1-r10"),
    ],
    ids=["single", "lowest-newer-branch", "skips-older-branch", "unorderable", "maven-branches",
         "apk-releases"],
)
def test_it_picks_the_lowest_fix_above_the_installed_version(
    installed: str, fix: str, ecosystem: str, expected: str | None
) -> None:
    assert lowest_fix(installed, fix, ecosystem=ecosystem) == expected


def test_it_refuses_to_choose_the_highest_among_unorderable_versions() -> None:
    assert highest(["1.0", "2.0", "1.5"]) == "2.0"
    assert highest(["1.0", "deadbeef"]) is None
    assert highest(["7.74.0-1.3+deb11u9", "7.74.0-1.3+deb11u10", "7.74.0-1.3+deb11u8"]) \
        == "7.74.0-1.3+deb11u10"
    assert highest(["1.20.1-r4", "1.20.1-r10"]) == "1.20.1-r10"
