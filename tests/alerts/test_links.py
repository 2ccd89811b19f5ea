"""Where a reader clicks: advisory links, scanwatch's pages under public_url, and the config."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from daemon import config
from daemon.alerts.links import advisory_link, findings_page, image_page


@pytest.mark.parametrize(
    ("vuln", "template", "link"),
    [("CVE-2024-3094", "", "https://nvd.nist.gov/vuln/detail/CVE-2024-3094"),
     ("GHSA-jfh8-c2jp-5v3q", "", "https://github.com/advisories/GHSA-jfh8-c2jp-5v3q"),
     ("GO-2024-2687", "", "https://pkg.go.dev/vuln/GO-2024-2687"),
     ("CVE-2024-3094", "https://osv.dev/vulnerability/{id}",
      "https://osv.dev/vulnerability/CVE-2024-3094"),
     ("<script>/x", "", "https://nvd.nist.gov/vuln/detail/%3Cscript%3E%2Fx"),
     ("two words", "", "")],
    ids=["cve-nvd", "ghsa-github", "go-pkg", "template", "hostile-quoted", "not-an-id"],
)
def test_it_links_each_id_to_its_advisory(vuln: str, template: str, link: str) -> None:
    assert advisory_link(vuln, template) == link


def test_it_builds_scanwatch_page_links_only_with_a_public_url() -> None:
    assert findings_page("", "prod") == ""
    assert findings_page("https://sw.example.com/", "prod", "pay ments", "api") == (
        "https://sw.example.com/findings?registry=prod&project=pay+ments&repository=api")
    assert image_page("https://sw.example.com", "prod", "payments", "team/api",
                      "sha256:ab") == "https://sw.example.com/images/prod/payments/team/api@sha256:ab"
    assert image_page("https://sw.example.com", "prod", "payments", "api", "") == ""


def _problems(tmp_path: Path, daemon: str) -> list[str]:
    path = tmp_path / "c.toml"
    path.write_text(f"[daemon]\n{daemon}\n", encoding="utf-8")
    return config.analyse(path, environ={}, today=date(2026, 11, 1)).problems


def test_the_config_takes_public_url_and_an_advisory_template(tmp_path: Path) -> None:
    assert _problems(tmp_path, 'public_url = "https://sw.example.com/"\n'
                     'advisory_url = "https://osv.dev/vulnerability/{id}"') == []
    path = tmp_path / "c.toml"
    loaded = config.load(path, environ={})
    assert loaded.daemon.public_url == "https://sw.example.com"
    assert loaded.daemon.advisory_url == "https://osv.dev/vulnerability/{id}"


@pytest.mark.parametrize(
    ("line", "says"),
    [('advisory_url = "https://osv.dev/vulnerability/"', 'must hold "{id}"'),
     ('advisory_url = "ftp://x/{id}"', "http(s) URL"),
     ('public_url = "scanwatch.local"', "http(s) URL")],
    ids=["no-placeholder", "not-http", "public-url-not-a-url"],
)
def test_the_config_refuses_a_bad_link_setting_with_its_path(tmp_path: Path, line: str,
                                                             says: str) -> None:
    [problem] = _problems(tmp_path, line)
    assert problem.startswith("daemon.") and says in problem
