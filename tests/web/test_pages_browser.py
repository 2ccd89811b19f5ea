"""The pages in a real headless browser, served by the real daemon over a real history database.

The history comes from two real runs against the simulator with a scanner DB update between
(``run --once``, then the daemon's own cron firing), so the fix-first page must show the CVEs
the update added. Chromium and chromedriver are Debian's (``.ci/run`` installs them); without
them the browser test skips with its reason, and in CI (``SCANWATCH_REQUIRE_SHARED=1``) fails.
"""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from daemon_driver import DaemonProcess, driver_command  # noqa: E402

LEAD = 3
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def require_browser() -> None:
    if Path(CHROMIUM).exists() and Path(DRIVER).exists():
        return
    reason = f"{CHROMIUM} or {DRIVER} is absent (apt-get install chromium chromium-driver)"
    if os.environ.get("SCANWATCH_REQUIRE_SHARED") == "1":
        pytest.fail(f"{reason}, and CI must run the browser tests")
    pytest.skip(reason)


def write_config(path: Path, sim: Any, db: Path, listen: str, extra: str = "",
                 url: str = "") -> Path:
    path.write_text(f"""\
[daemon]
database = "sqlite:///{db}"
listen = "{listen}"
stop_timeout = "5s"
{extra}
[[registry]]
name = "sim"
url = "{url or sim.url}"
username = "{sim.admin[0]}"
password = "${{SCANWATCH_TEST_SIM_PASSWORD}}"
requests_per_second = 200.0
burst = 50
max_concurrent_requests = 8
max_scans_in_flight = 4

[[schedule]]
name = "minutely"
cron = "* * * * *"
registries = ["sim"]
select = ["changed", "unscanned", "failed", "db_updated"]
on_missed = "skip"
""")
    return path


def scanwatch(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("scanwatch")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, input=stdin,
                          env={**os.environ, **env}, timeout=300)


def counted_plan(db: Path) -> list[Any]:
    """The state of the plan the daemon's writer counted for the pages, read-only."""
    from sqlalchemy import select

    from daemon.store.pages import read_only_store
    from daemon.store.plan import plan_state

    store = read_only_store(f"sqlite:///{db}")
    try:
        with store.reading() as conn:
            return list(conn.execute(select(plan_state.c.data_version, plan_state.c.built_at)))
    finally:
        store.close()


def listening_port(d: DaemonProcess) -> int:
    return int(d.wait_for_event("http_listening")["port"])


def browser(tmp_path: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def test_overview_fix_first_image_and_finding_are_reached_by_clicking_in_chromium(
    tmp_path: Path, make_sim: Any,
) -> None:
    require_browser()
    from selenium.webdriver.common.by import By

    sim = make_sim(seed=13, projects=1, repositories_per_project=2, artifacts_per_repository=2,
                   scanned_share=0.5, index_share=0.0, chart_share=0.0, scan_seconds=0.2,
                   scanner_concurrency=2)
    db = tmp_path / "h.db"
    config = write_config(tmp_path / "config.toml", sim, db, "127.0.0.1:0")
    env = {"SCANWATCH_TEST_SIM_PASSWORD": sim.admin[1]}
    first = scanwatch("run", "--once", "--config", str(config), env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    changes = sim.control.db_update(added=0.3, fix_released=0.15, rescored=0.05)
    added = {e["id"] for e in changes["added"] if e["repositories"]}
    assert added, changes

    fire = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    d = DaemonProcess(driver_command(travel=(fire - timedelta(seconds=LEAD)).isoformat()),
                      ["run", "--config", str(config)], tmp_path, env=env)
    driver = None
    try:
        port = listening_port(d)
        run = d.wait_for_event("run_finished", schedule="minutely")
        assert run["ok"] is True and run["events"] > 0, run
        base = f"http://127.0.0.1:{port}"
        driver = browser(tmp_path)
        driver.get(base + "/")
        assert "Overview" in driver.title
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "sim" in body and "minutely" in body and "ok" in body
        driver.save_screenshot(str(tmp_path / "overview.png"))

        driver.find_element(By.LINK_TEXT, "Fix first").click()
        assert driver.title.startswith("Fix first")
        text = driver.find_element(By.TAG_NAME, "body").text
        shown = {cve for cve in added if cve in text}
        assert shown, (sorted(added), text[:3000])
        assert " fixes " in text or "no fix yet" in text  # the reason of each action
        harbor = [a.get_attribute("href") for a in driver.find_elements(By.CLASS_NAME, "harbor")]
        assert harbor and all(h.startswith(f"{sim.url}/harbor/projects/") for h in harbor), harbor
        assert any("/artifacts-tab/artifacts/sha256:" in h for h in harbor), harbor
        driver.save_screenshot(str(tmp_path / "fix.png"))
        assert counted_plan(db), "the daemon counted no plan for the pages"  # store/plan.py

        image_link = driver.find_element(By.CSS_SELECTOR, "a[href^='/images/']")
        image_path = image_link.get_attribute("href")
        image_link.click()
        assert "@sha256:" in driver.current_url and driver.current_url == image_path
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "Open findings" in text and "Scans and changes" in text
        driver.save_screenshot(str(tmp_path / "image.png"))

        cve_links = [a for a in driver.find_elements(By.CSS_SELECTOR, "a[href^='/finding?']")
                     if a.text in added]
        assert cve_links, "the image shows no finding the update added"
        cve = cve_links[0].text
        cve_links[0].click()
        assert driver.title.startswith(cve)
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "open" in text and "advisory_published" in text, text[:2000]
        driver.save_screenshot(str(tmp_path / "finding.png"))

        # The alerts' Details links: a findings filter and an image, as they build them.
        with sqlite3.connect(db) as conn:
            project, repo, digest, vuln = conn.execute(
                "SELECT r.project, r.name, a.digest, f.vulnerability FROM finding f"
                " JOIN repository r ON r.id = f.repository_id"
                " JOIN artifact a ON a.repository_id = r.id"
                " WHERE f.resolved_at IS NULL AND f.severity >= 4 LIMIT 1").fetchone()
        filters = {"registry": "sim", "project": project, "repository": repo,
                   "severity": "High"}
        details = f"{base}/findings?{urlencode(filters)}"
        driver.get(details)
        text = driver.find_element(By.TAG_NAME, "body").text
        assert vuln in text and "Medium" not in text.split("Open since", 1)[1]
        driver.get(f"{base}/images/sim/{project}/{repo}@{digest}")
        assert digest in driver.find_element(By.TAG_NAME, "body").text

        driver.find_element(By.LINK_TEXT, "Trends").click()
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 2
        assert all(driver.execute_script("return arguments[0].naturalWidth", i) > 0
                   for i in images)
        driver.save_screenshot(str(tmp_path / "trends.png"))
        assert {p.name for p in tmp_path.glob("*.png")} == {
            "overview.png", "fix.png", "image.png", "finding.png", "trends.png"}
    finally:
        if driver is not None:
            driver.quit()
        d.signal(signal.SIGTERM)
        d.wait_exit()
        d.close()


def test_a_request_without_credentials_on_a_non_loopback_listener_gets_401(
    tmp_path: Path, make_sim: Any,
) -> None:
    sim = make_sim(seed=3, projects=1, repositories_per_project=1, artifacts_per_repository=1,
                   scan_seconds=0.1)
    db = tmp_path / "h.db"
    env = {"SCANWATCH_TEST_SIM_PASSWORD": sim.admin[1]}
    bare = write_config(tmp_path / "bare.toml", sim, db, "0.0.0.0:0")
    refused = scanwatch("run", "--config", str(bare), env=env)
    assert refused.returncode == 2
    assert "daemon.listen" in refused.stderr and "web_users_file" in refused.stderr

    users = tmp_path / "web-users"
    added = scanwatch("web", "add-user", "alice", str(users), env=env,
                      stdin="correct horse battery\n")
    assert added.returncode == 0, added.stderr
    assert users.read_text().startswith("alice:$argon2id$")
    assert "correct horse" not in users.read_text()
    config = write_config(tmp_path / "config.toml", sim, db, "0.0.0.0:0",
                          f'web_users_file = "{users}"\n')
    d = DaemonProcess(driver_command(), ["run", "--config", str(config)], tmp_path, env=env)
    try:
        port = listening_port(d)
        base = f"http://127.0.0.1:{port}"
        for path in ("/", "/fix", "/findings?registry=sim", "/trends/open.svg"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(base + path, timeout=30)
            assert caught.value.code == 401
            assert caught.value.headers["WWW-Authenticate"] == 'Basic realm="scanwatch"'
        wrong = urllib.request.Request(base + "/", headers={
            "Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(wrong, timeout=30)
        assert caught.value.code == 401
        good = urllib.request.Request(base + "/", headers={
            "Authorization": "Basic " + base64.b64encode(b"alice:correct horse battery").decode()})
        with urllib.request.urlopen(good, timeout=30) as page:
            assert page.status == 200
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
            assert page.headers["X-Frame-Options"] == "DENY"
            assert b"Overview" in page.read()
        # The service endpoints keep working without the pages' password.
        with urllib.request.urlopen(base + "/healthz", timeout=30) as health:
            assert health.read() == b"ok\n"
        with urllib.request.urlopen(base + "/metrics", timeout=30) as metrics:
            assert b"scanwatch_" in metrics.read()
    finally:
        d.signal(signal.SIGTERM)
        d.wait_exit()
        d.close()


HOSTILE = '<script>alert(1)</script><b>bold</b>&amp;"\' <@U123> ünï'


def test_hostile_scan_data_is_shown_as_text_never_as_markup(tmp_path: Path) -> None:
    """A report whose package names carry HTML (a hostile registry or scanner) goes through a
    real run into the history; the pages show those characters as text, in the page source
    and in the browser, and no element or script comes from them."""
    require_browser()
    import json

    from registry_proxy import FaultProxy
    from selenium.webdriver.common.by import By

    from daemon.sim import SimOptions, start_simulator

    sim = start_simulator(SimOptions(
        seed=5, projects=1, repositories_per_project=1, artifacts_per_repository=1,
        vulnerabilities_per_artifact=4, scanned_share=1.0, index_share=0.0, chart_share=0.0,
        scan_seconds=0.1))
    proxy = FaultProxy(sim.url)
    hostile_json = json.dumps(HOSTILE)[1:-1].encode()
    proxy.poison = lambda body: body.replace(b'"package":"', b'"package":"' + hostile_json)
    db = tmp_path / "h.db"
    config = write_config(tmp_path / "config.toml", sim, db, "127.0.0.1:0", url=proxy.url)
    env = {"SCANWATCH_TEST_SIM_PASSWORD": sim.admin[1]}
    d = None
    driver = None
    try:
        once = scanwatch("run", "--once", "--config", str(config), env=env)
        assert once.returncode == 0, once.stderr[-2000:]
        assert proxy.poisoned
        d = DaemonProcess(driver_command(), ["run", "--config", str(config)], tmp_path, env=env)
        base = f"http://127.0.0.1:{listening_port(d)}"
        for path in ("/findings", "/fix"):
            with urllib.request.urlopen(base + path, timeout=60) as page:
                html = page.read().decode()
            assert "<script>" not in html and "<b>bold" not in html
            assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;&amp;amp;" in html
        driver = browser(tmp_path)
        for path in ("/findings", "/fix"):
            driver.get(base + path)
            body = driver.find_element(By.TAG_NAME, "body")
            assert HOSTILE.split(" <@")[0] in body.text
            assert not driver.find_elements(By.TAG_NAME, "script")
            assert not [b for b in driver.find_elements(By.TAG_NAME, "b") if b.text == "bold"]
            driver.save_screenshot(str(tmp_path / f"hostile{path.replace('/', '-')}.png"))
        driver.get(base + "/findings")
        first = driver.find_element(By.CSS_SELECTOR, "a[href^='/finding?']")
        first.click()
        assert HOSTILE.split(" <@")[0] in driver.find_element(By.TAG_NAME, "body").text
    finally:
        if driver is not None:
            driver.quit()
        if d is not None:
            d.signal(signal.SIGTERM)
            d.wait_exit()
            d.close()
        proxy.close()
        sim.stop()
