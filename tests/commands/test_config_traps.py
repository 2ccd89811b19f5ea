"""Fewer traps in `scanwatch config check`, as a subprocess: crontab nicknames are accepted as
the expression they stand for, and a zone abbreviation warns with a region zone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from runkit import Cli, write_config


def check(tmp_path: Path, schedule_lines: str) -> subprocess.CompletedProcess[str]:
    path = write_config(tmp_path, "http://127.0.0.1:9", "admin")
    path.write_text(path.read_text().replace('cron = "0 2 * * *"', schedule_lines))
    return Cli(path, "a-secret")("config", "check")


@pytest.mark.parametrize(("alias", "expression"), [
    ("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
], ids=["hourly", "daily", "weekly", "monthly"])
def test_a_crontab_nickname_is_the_expression_it_stands_for(
    tmp_path: Path, alias: str, expression: str
) -> None:
    result = check(tmp_path, f'cron = "{alias}"')
    assert result.returncode == 0, result.stderr
    assert f'nightly "{expression}" UTC' in result.stdout


@pytest.mark.parametrize(("zone", "region"), [("CET", "Europe/Paris"),
                                              ("EST", "America/New_York")], ids=["CET", "EST"])
def test_a_zone_abbreviation_warns_and_names_a_region_zone(
    tmp_path: Path, zone: str, region: str
) -> None:
    result = check(tmp_path, f'cron = "0 2 * * *"\ntimezone = "{zone}"')
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f'scanwatch: warning: schedule[nightly].timezone: "{zone}" is an abbreviation, not a '
        f'place: name the region zone meant, such as "{region}"']


@pytest.mark.parametrize(("zone", "hint"), [
    pytest.param("PST", 'that is an abbreviation, not a place: name the region zone meant, '
                 'such as "America/Los_Angeles"', id="PST-is-not-MST"),
    pytest.param("Europe/Berln", 'did you mean "Europe/Berlin"?', id="typo"),
    pytest.param("utc", 'did you mean "UTC"?', id="case"),
])
def test_a_zone_that_is_not_one_gets_a_hint_that_names_a_place(tmp_path: Path, zone: str,
                                                               hint: str) -> None:
    result = check(tmp_path, f'cron = "0 2 * * *"\ntimezone = "{zone}"')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(
        f': schedule[nightly].timezone: must be an IANA time zone such as "Europe/Berlin" or '
        f'"UTC", got "{zone}"; {hint}')
