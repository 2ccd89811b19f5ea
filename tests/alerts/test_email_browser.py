"""The alert email as a reader sees it: rendered HTML opened in headless Chromium (Debian's
chromium + chromium-driver, driven by Selenium), asserting on what is visible.

Without a Chromium on the machine the test skips with the reason; with
``SCANWATCH_REQUIRE_BROWSER=1`` (set by ``.ci/run``, which installs both) that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alertkit import sample_items
from test_render import build

from daemon.alerts.render import render


def _binary(*names: str) -> str | None:
    return next((found for n in names if (found := shutil.which(n))), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = _binary("chromium", "chromium-browser")
    driver_path = _binary("chromedriver")
    if chromium is None or driver_path is None:
        reason = "chromium and chromium-driver are not installed (apt-get install chromium " \
                 "chromium-driver)"
        if os.environ.get("SCANWATCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}, and SCANWATCH_REQUIRE_BROWSER=1 says they must be")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=900,1400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_email_shows_its_severity_summary_colours_and_links_in_chromium(
    browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    r = render(build(sample_items()), "email")
    page = tmp_path / "alert.html"
    page.write_text(r.body, encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.title == r.title
    summary = browser.find_element(By.ID, "summary")
    assert summary.is_displayed()
    rows = [[c.text for c in tr.find_elements(By.CSS_SELECTOR, "th, td")]
            for tr in summary.find_elements(By.TAG_NAME, "tr")]
    assert rows == [["Severity", "With a fix", "Without a fix"], ["Critical", "1", "0"],
                    ["High", "2", "1"]]
    badge = summary.find_element(By.CSS_SELECTOR, "td span")
    assert badge.value_of_css_property("background-color") == "rgba(185, 28, 28, 1)"
    assert badge.value_of_css_property("color") == "rgba(255, 255, 255, 1)"
    body = browser.find_element(By.TAG_NAME, "body")
    assert "sans" in body.find_element(By.TAG_NAME, "div").value_of_css_property(
        "font-family").lower() or "Helvetica" in body.find_element(
        By.TAG_NAME, "div").value_of_css_property("font-family")
    text = body.text
    assert "Why: arrived with a new image (1)" in text
    assert "CVE-2024-0001 (Critical, CVSS 9.8, arrived with a new image)" in text  # the score
    cve = browser.find_element(By.LINK_TEXT, "CVE-2024-0001")
    assert cve.is_displayed()
    assert cve.get_attribute("href") == "https://nvd.nist.gov/vuln/detail/CVE-2024-0001"
    assert "Details: scanwatch findings --registry prod-harbor" in text
    shot = tmp_path / "alert.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
