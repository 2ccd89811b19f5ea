"""daemon/config.py: every problem at once, with its TOML path; secrets resolved and never shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from daemon import config
from daemon.config_checks import format_duration, parse_duration
from daemon.errors import ConfigError
from daemon.model import Severity

REPO = Path(__file__).resolve().parent.parent
ENV = {"HARBOR_PASSWORD": "hunter2-env"}

BASE = """
[[registry]]
name = "prod"
url = "https://harbor.example.com"
username = "robot$scanwatch"
password = "${HARBOR_PASSWORD}"

[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["prod"]

[[receiver]]
name = "slack"
urls = ["json://127.0.0.1:9/hook"]

[[route]]
receivers = ["slack"]
"""
REG = """
[[registry]]
name = "r2"
url = "https://h2.example.com"
username = "u"
password = "${HARBOR_PASSWORD}"
"""
SCHED = '\n[[schedule]]\nname = "s2"\ncron = "0 3 * * *"\nregistries = ["prod"]\n'
RECV = '\n[[receiver]]\nname = "r2"\n'
ROUTE = '\n[[route]]\nreceivers = ["slack"]\n'
IGNORE = '\n[[ignore]]\nvulnerability = "CVE-2024-1"\nreason = "not reachable"\n'


def scanwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("scanwatch")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "daemon"]
    full_env = {"PATH": os.environ.get("PATH", ""), **(env or {})}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=full_env,
                          cwd=REPO, timeout=60)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, **kwargs: object) -> list[str]:
    outcome = config.analyse(write(tmp_path, text), environ=kwargs.pop("environ", ENV),
                             today=date(2026, 11, 1), **kwargs)  # type: ignore[arg-type]
    return outcome.problems


def test_it_loads_the_base_with_defaults(tmp_path: Path) -> None:
    loaded = config.load(write(tmp_path, BASE), environ=ENV)
    registry = loaded.registries[0]
    assert registry.password.reveal() == "hunter2-env"
    assert registry.requests_per_second == 5.0 and registry.projects == ("*",)
    assert loaded.schedules[0].timezone == "UTC"
    # db_updated by default: a scanner DB update is where most new CVEs come from.
    assert loaded.schedules[0].select == ("changed", "unscanned", "failed", "db_updated")
    assert loaded.routes[0].min_severity is Severity.HIGH
    # severity_up by default: a finding rescored upwards matters as much as a new one.
    assert loaded.routes[0].events == ("new", "fix_available", "severity_up", "reopened",
                                       "sla_overdue", "scan_failed")
    assert loaded.daemon.database == config.default_database(ENV)
    assert loaded.source == str(tmp_path / "config.toml")


def test_a_registry_takes_its_webhook_secret_from_env_or_a_credential_file(
        tmp_path: Path) -> None:
    (tmp_path / "hook").write_text("Bearer from-file\n", encoding="utf-8")
    text = (BASE.replace('"${HARBOR_PASSWORD}"\n', '"${HARBOR_PASSWORD}"\nwebhook_secret = '
                         '"${HOOK}"\n', 1) + REG
            + f'webhook_secret_file = "{tmp_path / "hook"}"\n')
    loaded = config.load(write(tmp_path, text), environ={**ENV, "HOOK": "Bearer from-env"})
    first, second = loaded.registries
    assert first.webhook_secret is not None and second.webhook_secret is not None
    assert first.webhook_secret.reveal() == "Bearer from-env"
    assert second.webhook_secret.reveal() == "Bearer from-file"
    assert "from-env" not in repr(first) and "from-file" not in repr(second)
    assert config.load(write(tmp_path, BASE), environ=ENV).registries[0].webhook_secret is None


BAD = [
    pytest.param(BASE + REG + 'requests_per_second = "fast"',
                 'registry[r2].requests_per_second: must be a number > 0 and <= 1000000, '
                 'got "fast"',
                 id="rps-word"),
    pytest.param(BASE + REG + "requests_per_second = 0",
                 "registry[r2].requests_per_second: must be a number > 0 and <= 1000000, got 0",
                 id="rps-zero"),
    pytest.param(BASE + REG + "burst = true",
                 "registry[r2].burst: must be an integer >= 1, got true", id="burst-bool"),
    pytest.param(BASE + REG + 'verify_tls = "yes"',
                 'registry[r2].verify_tls: must be true or false, got "yes"', id="bool-string"),
    pytest.param(BASE + REG + "timeout = 30",
                 'registry[r2].timeout: must be a duration such as "90s", "5m", "2h", "7d", "1w" '
                 'or "1h30m" (more than zero, at most 3650d), got 30', id="duration-number"),
    pytest.param(BASE + REG + 'timeout = "30 minutes"',
                 'registry[r2].timeout: must be a duration such as "90s", "5m", "2h", "7d", "1w" '
                 'or "1h30m" (more than zero, at most 3650d), got "30 minutes"',
                 id="duration-words"),
    pytest.param(BASE + REG + "pasword = 1",
                 'registry[r2].pasword: unknown key; did you mean "password"?', id="typo-key"),
    pytest.param(BASE + REG + "zzz = 1",
                 "registry[r2].zzz: unknown key; valid keys: name, url, username, password, "
                 "password_file, webhook_secret, webhook_secret_file, projects, exclude_projects, "
                 "repositories, exclude_repositories, requests_per_second, burst, "
                 "max_concurrent_requests, max_scans_in_flight, timeout, max_retries, verify_tls, "
                 "ca_bundle, use_harbor_allowlist, max_response_size, max_report_size, "
                 "max_removed_share, base_images, read_manifests",
                 id="unknown-key"),
    pytest.param(BASE + REG + 'max_report_size = "2TB"',
                 'registry[r2].max_report_size: must be a size from 64 KiB to 1 GiB such as '
                 '"32MiB" or "512KiB", got "2TB"', id="size-unit"),
    pytest.param(BASE + REG + "max_response_size = 1",
                 'registry[r2].max_response_size: must be a size from 64 KiB to 1 GiB such as '
                 '"32MiB" or "512KiB", got 1', id="size-too-small"),
    pytest.param(BASE + REG + "max_removed_share = 0",
                 "registry[r2].max_removed_share: must be a number > 0 and <= 1 such as 0.5, "
                 "got 0", id="share-zero"),
    pytest.param(BASE + REG.replace('"https://h2.example.com"', '"ftp://h2.example.com"'),
                 'registry[r2].url: must be an http(s) URL with a host such as '
                 '"https://harbor.example.com", got "ftp://h2.example.com"', id="url-scheme"),
    pytest.param(BASE + REG.replace('"https://h2.example.com"', '"https://"'),
                 'registry[r2].url: must be an http(s) URL with a host such as '
                 '"https://harbor.example.com", got "https://"', id="url-no-host"),
    pytest.param(BASE + REG.replace("url = \"https://h2.example.com\"\n", ""),
                 'registry[r2].url: required: an http(s) URL such as "https://harbor.example.com"',
                 id="url-missing"),
    pytest.param(BASE + REG.replace('password = "${HARBOR_PASSWORD}"\n', ""),
                 'registry[r2].password: required: password = "${ENV_NAME}" or password_file = '
                 '"/run/credentials/scanwatch.service/harbor"', id="password-missing"),
    pytest.param(BASE + REG + 'password_file = "/x"',
                 "registry[r2].password: give password or password_file, not both",
                 id="password-both"),
    pytest.param(BASE + REG + 'webhook_secret = "${HOOK}"\nwebhook_secret_file = "/x"',
                 "registry[r2].webhook_secret: give webhook_secret or webhook_secret_file, not "
                 "both", id="webhook-secret-both"),
    pytest.param(BASE + REG.replace('"r2"', '"r 2"'),
                 'registry[r 2].name: must be a name of letters, digits, ".", "_" or "-" such as '
                 '"prod-harbor", got "r 2"', id="name-space"),
    pytest.param(BASE + REG + 'projects = "web-*"',
                 'registry[r2].projects: must be a list of glob patterns such as ["payments", '
                 '"web-*"], got "web-*"', id="globs-string"),
    pytest.param(BASE + REG.replace('"r2"', '"prod"'),
                 'registry[prod].name: duplicate name "prod": used by registry #1 and #2; names '
                 "must be unique", id="duplicate-registry"),
    pytest.param(BASE + SCHED.replace('"0 3 * * *"', '"0 3 * *"'),
                 'schedule[s2].cron: must be a 5-field crontab expression (minute hour '
                 'day-of-month month day-of-week, day-of-week 0 = Sunday) such as "0 2 * * *", '
                 'or @hourly, @daily, @weekly, @monthly, '
                 'got "0 3 * *"', id="cron-fields"),
    pytest.param(BASE + SCHED.replace('"0 3 * * *"', '"61 3 * * *"'),
                 'schedule[s2].cron: must be a 5-field crontab expression (minute hour '
                 'day-of-month month day-of-week, day-of-week 0 = Sunday) such as "0 2 * * *", '
                 'or @hourly, @daily, @weekly, @monthly, '
                 'got "61 3 * * *" (bad minute)', id="cron-minute"),
    pytest.param(BASE + SCHED.replace('"0 3 * * *"', '"@fortnightly"'),
                 'schedule[s2].cron: must be a 5-field crontab expression (minute hour '
                 'day-of-month month day-of-week, day-of-week 0 = Sunday) such as "0 2 * * *", '
                 'or @hourly, @daily, @weekly, @monthly, got "@fortnightly"', id="cron-alias"),
    pytest.param(BASE + SCHED + 'timezone = "Europe/Berln"',
                 'schedule[s2].timezone: must be an IANA time zone such as "Europe/Berlin" or '
                 '"UTC", got "Europe/Berln"; did you mean "Europe/Berlin"?', id="timezone"),
    pytest.param(BASE + SCHED.replace('["prod"]', '["prd"]'),
                 'schedule[s2].registries: unknown registry "prd"; did you mean "prod"?',
                 id="schedule-unknown-registry"),
    pytest.param(BASE + SCHED.replace('["prod"]', "[]"),
                 "schedule[s2].registries: must name at least one registry",
                 id="schedule-no-registry"),
    pytest.param(BASE + SCHED + 'select = ["changed", "stael"]',
                 'schedule[s2].select: unknown lane "stael"; did you mean "stale"?', id="lane"),
    pytest.param(BASE + SCHED + 'on_missed = "later"',
                 'schedule[s2].on_missed: must be one of "run_once", "skip", got "later"',
                 id="on-missed"),
    pytest.param(BASE + SCHED + "max_scans = -1",
                 "schedule[s2].max_scans: must be an integer >= 0, got -1", id="max-scans"),
    pytest.param(BASE + RECV,
                 'receiver[r2].urls: required: a list of apprise URLs such as '
                 '["slack://T000/B000/XXXX/#security"] (or urls_file)', id="receiver-no-urls"),
    pytest.param(BASE + RECV + 'urls = ["hooks.example.com/abc"]',
                 'receiver[r2].urls[1]: must be an apprise URL such as '
                 '"slack://T000/B000/XXXX/#security", got a value without scheme://',
                 id="receiver-url-no-scheme"),
    pytest.param(BASE + ROUTE.replace('["slack"]', '["slak"]'),
                 'route[2].receivers: unknown receiver "slak"; did you mean "slack"?',
                 id="route-unknown-receiver"),
    pytest.param(BASE + ROUTE + 'escalate_to = ["pager"]',
                 'route[2].escalate_to: unknown receiver "pager"; known: slack',
                 id="route-unknown-escalation"),
    pytest.param(BASE + ROUTE + 'group = "imediate"',
                 'route[2].group: must be one of "immediate", "digest", got "imediate"; did you '
                 'mean "immediate"?', id="route-group"),
    pytest.param(BASE + ROUTE + 'min_severity = "hgh"',
                 'route[2].min_severity: must be a severity: Critical, High, Medium, Low, '
                 'Unknown, None (any case), got "hgh"; did you mean "High"?', id="severity"),
    pytest.param(BASE + ROUTE + 'events = ["new", "severity_changed"]',
                 'route[2].events: unknown event "severity_changed"; did you mean '
                 '"severity_down"?', id="event"),
    pytest.param(BASE + IGNORE,
                 "ignore[1].expires: required: a date such as 2027-01-31", id="ignore-no-expiry"),
    pytest.param(BASE + IGNORE + 'expires = "someday"',
                 'ignore[1].expires: must be a date such as 2027-01-31, got "someday"',
                 id="ignore-bad-date"),
    pytest.param(BASE + '\n[sla]\nHigh = "soon"\n',
                 'sla.High: must be a duration such as "90s", "5m", "2h", "7d", "1w" or "1h30m" '
                 '(more than zero, at most 3650d), got "soon"', id="sla-duration"),
    pytest.param(BASE + '\n[sla]\nHihg = "7d"\n',
                 'sla.Hihg: unknown key; did you mean "High"?', id="sla-key"),
    pytest.param('[daemon]\nlisten = "9468"\n' + BASE,
                 'daemon.listen: must be "HOST:PORT" such as "127.0.0.1:9468" (port 0: any free '
                 'port), or "" for no listener, got "9468"', id="listen"),
    pytest.param('[daemon]\ndatabase = "history.db"\n' + BASE,
                 'daemon.database: must be an SQLAlchemy URL such as '
                 '"sqlite:////var/lib/scanwatch/history.db", got "history.db"', id="database"),
    pytest.param("[[daemon]]\n" + BASE,
                 "daemon: must be a table ([daemon]), got [a table]", id="daemon-array"),
    pytest.param('registry = "prod"\n',
                 'registry: must be an array of tables ([[registry]]), got "prod"',
                 id="registry-string"),
    pytest.param("[registyr]\n" + BASE,
                 'registyr: unknown section; did you mean "registry"?', id="section-typo"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_it_reports_a_bad_value_with_its_path_and_what_is_valid(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert problems_of(tmp_path, text) == [expected]


def test_it_raises_config_error_listing_every_problem(tmp_path: Path) -> None:
    text = BASE + REG + 'burst = 0\ntimeout = "soon"\n' + ROUTE + 'group = "x"\n'
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text), environ=ENV)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "registry[r2].burst", "registry[r2].timeout", "route[2].group"]
    assert str(caught.value) == f"{tmp_path / 'config.toml'}: 3 problems in the configuration"


def test_it_lists_all_five_mistakes_and_exits_2(tmp_path: Path) -> None:
    text = (BASE + REG + 'requests_per_second = "fast"\nverify_tls = "yes"\n' + SCHED
            + 'timezone = "Mars/Base"\n' + ROUTE.replace('["slack"]', '["pager"]')
            + 'min_severity = "urgent"\n')
    result = scanwatch("--config", str(write(tmp_path, text)), "config", "check",
                       env={"HARBOR_PASSWORD": "x"})
    assert result.returncode == 2
    assert "5 problems in the configuration" in result.stderr
    for path in ("registry[r2].requests_per_second:", "registry[r2].verify_tls:",
                 "schedule[s2].timezone:", "route[2].receivers:", "route[2].min_severity:"):
        assert f"\n  {path}" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(("text", "line"), [
    pytest.param('[daemon]\nlisten = \n', "line 2, column 10", id="missing-value"),
    pytest.param(BASE + '\n[[route]]\nreceivers = ["a"\n', "line 21 (the end of the file)",
                 id="open-array"),
    pytest.param(BASE + 'x = "a\ny = 1\n', "line 19, column 7", id="open-string"),
    pytest.param("[1, 2]\n", "line 1, column 3", id="top-level-array"),
])
def test_it_reports_a_syntax_error_by_line(tmp_path: Path, text: str, line: str) -> None:
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith(line) and "TOML syntax error" in problem


@pytest.mark.parametrize(("make", "rc", "needle"), [
    pytest.param(lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe"), 2, "not UTF-8",
                 id="binary"),
    pytest.param(lambda p: p.mkdir(), 2, "is a directory", id="directory"),
    pytest.param(lambda p: p.write_text(""), 2, "holds no setting at all", id="empty"),
    pytest.param(lambda p: p.write_text("[1, 2]\n"), 2, "line 1", id="toml-array"),
    pytest.param(lambda p: p.write_text(
        'daemon = 1\nregistry = 2\nschedule = "x"\nreceiver = [1]\nroute = {}\nsla = []\n'
        "ignore = [{}]\n"), 2, "route: must be an array of tables", id="wrong-types"),
])
def test_it_never_shows_a_traceback_for_a_bad_file(
    tmp_path: Path, make: object, rc: int, needle: str
) -> None:
    path = tmp_path / "config.toml"
    make(path)  # type: ignore[operator]
    result = scanwatch("--config", str(path), "config", "check")
    assert result.returncode == rc
    assert needle in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


WRONG_VALUES: list[object] = [{"a": 1}, [1], date(2026, 1, 1), 1.5, "", -1]


@pytest.mark.parametrize("section", ["daemon", "registry", "schedule", "receiver", "route",
                                     "ignore", "sla"])
def test_it_reports_every_key_given_a_wrong_type(tmp_path: Path, section: str) -> None:
    keys = {"daemon": config.DAEMON_KEYS, "registry": config.REGISTRY_KEYS,
            "schedule": config.SCHEDULE_KEYS, "receiver": config.RECEIVER_KEYS,
            "route": config.ROUTE_KEYS, "ignore": config.IGNORE_KEYS,
            "sla": dict.fromkeys(config.SLA_KEYS)}[section]
    import tomli_w

    for wrong in WRONG_VALUES:
        table = {k: wrong for k in keys if k not in ("password_file", "webhook_secret_file")}
        doc = {section: table} if section in ("daemon", "sla") else {section: [table]}
        outcome = config.analyse(write(tmp_path, tomli_w.dumps(doc)), environ={})
        assert outcome.config is None
        flagged = {p.split(": ")[0].split(".")[-1].split("[")[0] for p in outcome.problems}
        # Every key is reported except where the wrong value happens to be valid ("" listen...).
        missed = {k for k in table if k not in flagged}
        allowed = set()
        if wrong == "":
            allowed = {"database", "listen", "username", "ca_bundle", "vulnerability", "package",
                       "format", "reason", "web_users_file"}
        elif wrong == 1.5:
            allowed = {"requests_per_second"}
        elif isinstance(wrong, date):
            allowed = {"expires"}
        assert missed <= allowed, (wrong, missed)


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", timedelta(seconds=90)), ("5m", timedelta(minutes=5)), ("2h", timedelta(hours=2)),
    ("7d", timedelta(days=7)), ("1w", timedelta(weeks=1)), ("1h30m", timedelta(minutes=90)),
    ("0", timedelta(0)), ("1.5h", timedelta(minutes=90)), ("5", None), ("h", None),
    ("5 m", timedelta(minutes=5)), ("1x", None), ("-5m", None), ("", None),
], ids=lambda v: repr(v) if isinstance(v, str) else None)
def test_it_parses_durations(text: str, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected
    if expected:
        assert parse_duration(format_duration(expected)) == expected


def test_it_maps_continue_severities_and_sla_in_any_case(tmp_path: Path) -> None:
    text = BASE + ROUTE + ('min_severity = "critical"\ncontinue = true\n'
                           'repeat_open_every = "7d"\n[sla]\ncritical = "7d"\nHIGH = "30d"\n'
                           'due_soon = "1d"\n')
    loaded = config.load(write(tmp_path, text), environ=ENV)
    route = loaded.routes[1]
    assert route.min_severity is Severity.CRITICAL and route.continue_ is True
    assert route.repeat_open_every == timedelta(days=7)
    assert loaded.sla.deadlines == {Severity.CRITICAL: timedelta(days=7),
                                    Severity.HIGH: timedelta(days=30)}
    assert loaded.sla.due_soon == timedelta(days=1)


def test_it_accepts_a_config_without_receivers_or_routes(tmp_path: Path) -> None:
    text = BASE.split("[[receiver]]")[0]
    loaded = config.load(write(tmp_path, text), environ=ENV)
    assert loaded.receivers == () and loaded.routes == ()


@pytest.mark.parametrize(("environ", "expected"), [
    ({"STATE_DIRECTORY": "/var/lib/scanwatch"}, "sqlite:////var/lib/scanwatch/history.db"),
    ({"HOME": "/home/ops"}, "sqlite:////home/ops/.local/state/scanwatch/history.db"),
    ({"HOME": "/home/ops", "XDG_STATE_HOME": "/srv/state"},
     "sqlite:////srv/state/scanwatch/history.db"),
    ({"HOME": "/home/ops", "XDG_STATE_HOME": "relative/state"},
     "sqlite:////home/ops/.local/state/scanwatch/history.db"),
], ids=["systemd", "xdg-default", "xdg-set", "xdg-relative-ignored"])
def test_it_fills_the_default_database(tmp_path: Path, environ: dict[str, str],
                                       expected: str) -> None:
    assert config.default_database(environ) == expected
    loaded = config.load(write(tmp_path, BASE), environ={**ENV, **environ})
    assert loaded.daemon.database == expected


def test_it_warns_about_an_expired_ignore_rule(tmp_path: Path) -> None:
    text = BASE + IGNORE + "expires = 2026-10-01\n"
    outcome = config.analyse(write(tmp_path, text), environ=ENV, today=date(2026, 11, 1))
    assert outcome.config is not None
    assert outcome.config.ignores[0].expires == date(2026, 10, 1)
    assert outcome.warnings == ["ignore[1].expires: 2026-10-01 has passed: the rule no longer "
                                "applies"]


def test_next_run_uses_the_schedule_time_zone() -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert config.next_run("0 2 * * *", "Europe/Berlin", now).isoformat() == (
        "2026-06-02T02:00:00+02:00")
    # Day of week 0 is Sunday (2026-06-07 is a Sunday).
    assert config.next_run("0 9 * * 0", "UTC", now).date() == date(2026, 6, 7)


# --- the example and the starter ---------------------------------------------------------------


def test_the_example_passes_check_without_environment() -> None:
    outcome = config.analyse(REPO / "config.example.toml", strict=False, environ={})
    assert outcome.problems == []
    loaded = outcome.config
    assert loaded is not None
    assert loaded.registries and loaded.schedules and loaded.receivers and loaded.routes
    assert all(w.endswith("is not set or empty") for w in outcome.warnings)


def test_the_example_loads_strictly_with_its_environment() -> None:
    env = dict.fromkeys(["HARBOR_PASSWORD", "SLACK_TOKEN_A", "SLACK_TOKEN_B", "SLACK_TOKEN_C",
                         "SMTP_PASSWORD"], "tok")
    loaded = config.load(REPO / "config.example.toml", environ=env)
    assert loaded.receivers[0].urls[0].reveal() == "slack://tok/tok/tok/#security"
    assert loaded.routes[0].escalate_to == ("secops-mail",)


def test_the_example_shows_every_option() -> None:
    text = (REPO / "config.example.toml").read_text()
    sections = {"daemon": config.DAEMON_KEYS, "registry": config.REGISTRY_KEYS,
                "schedule": config.SCHEDULE_KEYS, "receiver": config.RECEIVER_KEYS,
                "route": config.ROUTE_KEYS, "ignore": config.IGNORE_KEYS,
                "sla": dict.fromkeys(config.SLA_KEYS)}
    for section, keys in sections.items():
        header = f"[{section}]" if section in ("daemon", "sla") else f"[[{section}]]"
        start = text.index(header)
        block = text[start:]
        shown = {line.lstrip("# ").split(" =")[0] for line in block.splitlines() if " = " in line}
        assert set(keys) - shown == set(), section


def commented_default(text: str, section: str, key: str) -> object:
    """The value of ``# key = …`` in the first ``[[section]]`` block of a commented config."""
    import tomllib

    block = text[text.index(f"[[{section}]]"):]
    line = next(x for x in block.splitlines() if x.startswith(f"# {key} = "))
    return tomllib.loads(line[2:].split("  #")[0])[key]


@pytest.mark.parametrize("source", ["config.example.toml", "config init"],
                         ids=["example", "config-init"])
@pytest.mark.parametrize(("section", "key", "default"), [
    pytest.param("schedule", "select", ["changed", "unscanned", "failed", "db_updated"],
                 id="select-has-db_updated"),
    pytest.param("route", "events", ["new", "fix_available", "severity_up", "reopened",
                                     "sla_overdue", "scan_failed"], id="events-have-severity_up"),
])
def test_the_example_and_the_starter_state_the_defaults_that_apply(
    tmp_path: Path, source: str, section: str, key: str, default: list[str]
) -> None:
    from daemon.commands.config import starter_text

    text = (REPO / source).read_text() if source.endswith(".toml") else starter_text()
    assert commented_default(text, section, key) == default
    loaded = config.load(write(tmp_path, BASE), environ=ENV)
    applied = loaded.schedules[0].select if key == "select" else loaded.routes[0].events
    assert list(applied) == default


def test_config_init_writes_a_starter_that_passes_check(tmp_path: Path) -> None:
    target = tmp_path / "scanwatch.toml"
    first = scanwatch("config", "init", str(target))
    assert first.returncode == 0 and target.is_file()
    check = scanwatch("--config", str(target), "config", "check")
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("ok\n")
    again = scanwatch("config", "init", str(target))
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"scanwatch: {target}: already exists; not overwriting it (choose another path or "
        "remove it first)"]


# --- secrets ----------------------------------------------------------------------------------


def test_it_reads_secrets_from_env_and_files(tmp_path: Path) -> None:
    (tmp_path / "harbor.pw").write_text("from-file-secret\n")
    (tmp_path / "urls").write_text("# comment\njson://h/${HOOK_TOKEN}\n\nslack://a/b/c\n")
    text = BASE + REG.replace('password = "${HARBOR_PASSWORD}"', 'password_file = "harbor.pw"')
    text += RECV + 'urls_file = "urls"\n'
    loaded = config.load(write(tmp_path, text), environ={**ENV, "HOOK_TOKEN": "hook-tok"})
    assert loaded.registries[0].password.source == "env:HARBOR_PASSWORD"
    r2 = loaded.registry("r2")
    assert r2 is not None and r2.password.reveal() == "from-file-secret"
    assert r2.password.source == f"file:{tmp_path / 'harbor.pw'}"
    receiver = loaded.receiver("r2")
    assert receiver is not None
    assert [u.reveal() for u in receiver.urls] == ["json://h/hook-tok", "slack://a/b/c"]


@pytest.mark.parametrize(("fragment", "message"), [
    pytest.param("", "registry[prod].password: environment variable HARBOR_PASSWORD is not set "
                 "or empty", id="unset-env"),
    pytest.param(REG.replace('password = "${HARBOR_PASSWORD}"', 'password_file = "nope.pw"'),
                 "registry[prod].password: environment variable HARBOR_PASSWORD is not set or "
                 "empty", id="missing-file"),
])
def test_a_missing_secret_warns_in_check_and_fails_when_strict(
    tmp_path: Path, fragment: str, message: str
) -> None:
    path = write(tmp_path, BASE + fragment)
    loose = config.analyse(path, strict=False, environ={})
    assert loose.config is not None and message in loose.warnings
    strict = config.analyse(path, strict=True, environ={})
    assert strict.config is None and message in strict.problems
    if "nope.pw" in fragment:
        missing = f'registry[r2].password_file: cannot read "{tmp_path / "nope.pw"}": No such file'
        assert any(w.startswith(missing) for w in loose.warnings)
        assert any(p.startswith(missing) for p in strict.problems)


def test_a_literal_secret_is_accepted_with_a_warning(tmp_path: Path) -> None:
    text = BASE.replace('"${HARBOR_PASSWORD}"', '"s3cr3t-literal"')
    outcome = config.analyse(write(tmp_path, text), environ={})
    assert outcome.config is not None
    assert outcome.config.registries[0].password.reveal() == "s3cr3t-literal"
    assert outcome.warnings == ["registry[prod].password: a literal secret in the file; prefer "
                                "${ENV} or password_file"]


SECRETS = ("s3cr3t-literal", "env-s3cr3t", "file-s3cr3t", "url-s3cr3t", "tok-s3cr3t")


def _secret_laden(tmp_path: Path, broken: bool) -> Path:
    (tmp_path / "pw").write_text("file-s3cr3t")
    text = BASE.replace('"${HARBOR_PASSWORD}"', '"s3cr3t-literal"') + REG.replace(
        'password = "${HARBOR_PASSWORD}"', 'password_file = "pw"')
    text += RECV + 'urls = ["mailtos://u:url-s3cr3t@smtp.example.com", "json://h/${TOK}"]\n'
    text += REG.replace('"r2"', '"r3"').replace("${HARBOR_PASSWORD}", "${ENV_PW}")
    if broken:
        text += REG.replace('"r2"', '"r4"').replace(
            '"https://h2.example.com"', '"https://u:url-s3cr3t@h.example.com"').replace(
            'password = "${HARBOR_PASSWORD}"', 'password = ["s3cr3t-literal"]')
        text += RECV.replace('"r2"', '"r5"') + 'urls = ["tok-s3cr3t", 5]\n'
    return write(tmp_path, text)


@pytest.mark.parametrize("broken", [False, True], ids=["valid", "broken"])
def test_no_secret_value_appears_in_messages_repr_or_check_output(
    tmp_path: Path, broken: bool
) -> None:
    env = {"ENV_PW": "env-s3cr3t", "TOK": "tok-s3cr3t"}
    path = _secret_laden(tmp_path, broken)
    outcome = config.analyse(path, environ=env)
    assert (outcome.config is None) is broken
    seen = "\n".join(outcome.problems + outcome.warnings) + repr(outcome.config)
    if outcome.config is not None:
        seen += repr(outcome.config.receivers) + str(outcome.config.registries)
        assert outcome.config.registry("r3").password.reveal() == "env-s3cr3t"  # type: ignore[union-attr]
    for fmt in ("table", "json"):
        result = scanwatch("--config", str(path), "config", "check", "--format", fmt, env=env)
        assert result.returncode == (2 if broken else 0)
        seen += result.stdout + result.stderr
        if fmt == "json":
            assert json.loads(result.stdout)["ok"] is not broken
    assert "Traceback" not in seen
    for secret in SECRETS:
        assert secret not in seen
    if broken:
        assert "registry[r4].url: must not carry credentials" in seen
        assert "registry[r4].password: must be a string" in seen
        assert "receiver[r5].urls[1]: must be an apprise URL" in seen


def test_config_check_warns_about_a_route_that_can_never_match(tmp_path: Path) -> None:
    shadowed = BASE + '\n[[route]]\nreceivers = ["slack"]\nrepositories = ["team/*"]\n'
    done = scanwatch("config", "check", "--config", str(write(tmp_path, shadowed)), env=ENV)
    assert done.returncode == 0, done.stderr
    assert "route[2]: can never match: the earlier route[1]" in done.stderr, done.stderr
    clean = scanwatch("config", "check", "--config", str(write(tmp_path, BASE, "ok.toml")), env=ENV)
    assert "route[" not in clean.stderr, clean.stderr


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        pytest.param("mailtos://scanwatch:pw-literal@smtp.example.com?to=a@example.com", True,
                      id="password-in-userinfo"),
        pytest.param("mailto://127.0.0.1:2525?from=scanwatch@example.org&to=a@example.org",
                     False, id="port-then-at-in-query"),
        pytest.param("mailtos://scanwatch:${SMTP}@smtp.example.com?to=a@example.com", False,
                     id="password-from-env"),
    ],
)
def test_it_warns_about_a_literal_password_in_a_receiver_url(tmp_path: Path, url: str,
                                                             warned: bool) -> None:
    text = BASE.replace('urls = ["json://127.0.0.1:9/hook"]', f'urls = ["{url}"]')
    outcome = config.analyse(write(tmp_path, text), environ={**ENV, "SMTP": "x"},
                             today=date(2026, 11, 1))
    assert outcome.problems == []
    flagged = [w for w in outcome.warnings if "literal password" in w]
    assert bool(flagged) is warned, outcome.warnings


@pytest.mark.parametrize("reads", [True, False], ids=["manifests-read", "read_manifests-off"])
def test_a_pull_time_filter_over_manifest_reads_is_warned_of_by_config_check(
    tmp_path: Path, reads: bool
) -> None:
    """Harbor counts lineage's manifest reads as pulls: ``only_pulled_within`` would see them."""
    text = BASE.replace('registries = ["prod"]\n',
                        'registries = ["prod"]\nonly_pulled_within = "30d"\n', 1)
    if not reads:
        text = text.replace('password = "${HARBOR_PASSWORD}"\n',
                            'password = "${HARBOR_PASSWORD}"\nread_manifests = false\n', 1)
    checked = scanwatch("config", "check", "--config", str(write(tmp_path, text)), env=ENV)
    assert checked.returncode == 0, checked.stderr
    warned = [line for line in checked.stderr.splitlines() if "only_pulled_within" in line]
    assert warned == ([
        "scanwatch: warning: schedule[nightly].only_pulled_within: lineage reads each scanned "
        "image's manifest on prod, and Harbor counts that as a pull: every image scanwatch has "
        "read looks pulled; set read_manifests = false there"] if reads else [])
