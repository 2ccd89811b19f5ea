"""`scanwatch demo` runs from nothing, writes only under its directory, and shows a real alert."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def test_it_runs_two_cycles_and_shows_the_alert_as_slack_and_email_get_it(tmp_path: Path):
    scanwatch = Path(sys.executable).with_name("scanwatch")
    command = [str(scanwatch)] if scanwatch.exists() else [sys.executable, "-m", "daemon"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANWATCH_")}
    done = subprocess.run([*command, "demo"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    # Everything it wrote is under the directory it names.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scanwatch-demo"]
    out_dir = tmp_path / "scanwatch-demo"
    assert f"under {out_dir}" in done.stdout or "under scanwatch-demo" in done.stdout
    assert re.search(r"First sight: \d+ open findings", done.stdout)
    for status in ("Complete", "Not Supported"):
        assert status in done.stdout
    slack_markup = (out_dir / "alert-slack.txt").read_text()
    # As Slack shows it: each link by its label (every CVE id links to its advisory).
    slack = re.sub(r"<[^<>|]+\|([^<>]*)>", r"\1", slack_markup)
    assert "<https://nvd.nist.gov/vuln/detail/CVE-" in slack_markup
    email_text = (out_dir / "alert-email.txt").read_text()
    email_html = (out_dir / "alert-email.html").read_text()
    assert slack.strip() and slack_markup.strip() in done.stdout, "the printed alert is the file"
    cves = set(re.findall(r"CVE-\d{4}-\d+", slack))
    assert cves, "the alert names the CVEs to fix"
    # Every CVE says why it is there: the simulator published, released a fix, rescored, pushed.
    # (With its CVSS v3 score where the report gives one, between severity and reason.)
    why = re.compile(r"CVE-\d{4}-\d+ \((?:Critical|High|Medium|Low|Unknown|None), "
                     r"(?:CVSS \d+\.\d, )?"
                     r"(newly published|fix released|rescored \w+ → \w+|arrived with a push of "
                     r"[^)]+|reopened|ignore expired|rebuild available)\)")
    assert len(why.findall(slack)) == len(re.findall(r"CVE-\d{4}-\d+", slack))
    assert {"newly published", "fix released"} <= set(why.findall(slack))
    assert cves <= set(re.findall(r"CVE-\d{4}-\d+", email_text))
    assert email_text.startswith("Subject: [scanwatch] demo-harbor:")
    assert 'id="summary"' in email_html and "Upgrade" in email_text
    # CISA's KEV catalog moves from 2025.08.21 to 2025.08.25 (CVE-2025-48384, Git): one fetch,
    # no rescan, and the known-exploited alert names the images that carry it and the upgrade.
    assert "KEV catalog 2025.08.25, which adds CVE-2025-48384" in done.stdout
    assert "(1 conditional request)" in done.stdout and "2 known_exploited event(s)" in done.stdout
    kev_markup = (out_dir / "alert-kev-slack.txt").read_text()
    kev = re.sub(r"<[^<>|]+\|([^<>]*)>", r"\1", kev_markup)
    assert kev_markup.strip() in done.stdout
    assert "Upgrade git 1:2.39.5-0+deb12u1 → 1:2.39.5-0+deb12u2" in kev
    assert "CVE-2025-48384 (High, now known exploited (CISA KEV))" in kev
    assert ("CVE-2025-48384 is known exploited (CISA KEV: Git Link Following Vulnerability, "
            "due 2025-09-15)") in kev
    [pushed] = re.findall(r"And (\S+, \S+) came with Debian's git", done.stdout)
    [where] = [line for line in kev.splitlines() if line.strip().startswith("in ")]
    assert {name.strip() for name in where.strip()[3:].split(",")} == set(pushed.split(", "))
    assert set(re.findall(r"CVE-\d{4}-\d+", kev)) == {"CVE-2025-48384"}
    # The config it wrote is a real one: `config check` accepts it.
    check = subprocess.run([*command, "config", "check", "--config",
                            str(out_dir / "config.toml")], env=env, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_it_refuses_a_directory_that_is_not_its_own(tmp_path: Path):
    from daemon.demo import prepare_directory
    from daemon.errors import UsageError

    real = tmp_path / "state"
    real.mkdir()
    (real / "history.db").write_text("a real history")
    try:
        prepare_directory(real)
    except UsageError as exc:
        assert "not a scanwatch demo directory" in str(exc)
    else:
        raise AssertionError("a directory with someone's history.db was accepted")
    assert (real / "history.db").read_text() == "a real history"
    afile = tmp_path / "afile"
    afile.write_text("x")
    for bad in (afile, afile / "below"):
        try:
            prepare_directory(bad)
        except UsageError as exc:
            assert str(bad) in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
    mine = tmp_path / "demo"
    prepare_directory(mine)
    (mine / "history.db").write_text("old demo")
    prepare_directory(mine)  # its own directory: starts afresh
    assert not (mine / "history.db").exists()
