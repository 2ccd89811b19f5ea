"""Configuration values that used to slip through or crash: ``config check`` and ``run --once``
(real subprocesses) both refuse each, exit 2, with one line naming the TOML path, and the
history database is not even created."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from runkit import SCANWATCH, TIMEOUT

GOOD = """\
[daemon]
database = "sqlite:///{db}"
{daemon}
[[registry]]
name = "prod"
url = {url}
username = "admin"
password = "${{HARBOR_SECRET}}"
requests_per_second = {rps}

[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["prod"]

[[receiver]]
name = "hook"
urls = [{receiver}]

[[route]]
receivers = ["hook"]
"""
DEFAULTS = {"daemon": "", "url": '"http://127.0.0.1:9"', "rps": "5.0",
            "receiver": '"json://127.0.0.1:9/hook"'}
CASES = [
    pytest.param({"daemon": 'stop_timeout = "999999999999w"'},
                 'daemon.stop_timeout: must be a duration such as "90s", "5m", "2h", "7d", '
                 '"1w" or "1h30m" (more than zero, at most 3650d), got "999999999999w"',
                 id="duration-overflow"),
    pytest.param({"rps": "inf"}, "registry[prod].requests_per_second: must be a number > 0 "
                 "and <= 1000000, got inf", id="infinite-rate"),
    pytest.param({"url": '"http://127.0.0.1:9/\\r\\nX-Injected: 1"'},
                 'registry[prod].url: must be an http(s) URL with a host such as '
                 '"https://harbor.example.com", without spaces or control characters (NUL, CR, '
                 'LF), got "http://127.0.0.1:9/\ufffd\ufffdX-Injected:\ufffd1"', id="url-crlf"),
    pytest.param({"url": '"http://127.0.0.1\\u0000:9"'},
                 'registry[prod].url: must be an http(s) URL with a host such as '
                 '"https://harbor.example.com", without spaces or control characters (NUL, CR, '
                 'LF), got "http://127.0.0.1\ufffd:9"', id="url-nul"),
    pytest.param({"receiver": '"nosuchscheme://127.0.0.1/${HOOK_TOKEN}"'},
                 'receiver[hook].urls[1]: unknown apprise scheme "nosuchscheme://": see '
                 "https://github.com/caronc/apprise/wiki for the services it knows",
                 id="unknown-apprise-scheme"),
]


def scanwatch(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"HARBOR_SECRET": "s3cr3t-value", "HOOK_TOKEN": "t0ken-value", "PATH": "/usr/bin",
           "XDG_STATE_HOME": str(config.parent / "state")}  # the default database's place
    return subprocess.run([SCANWATCH, *args, "--config", str(config)], capture_output=True,
                          text=True, env=env, timeout=TIMEOUT)


@pytest.mark.parametrize("command", [pytest.param(("config", "check"), id="check"),
                                     pytest.param(("run", "--once"), id="run")])
@pytest.mark.parametrize(("change", "line"), CASES)
def test_check_and_run_refuse_the_value_in_one_line_and_write_nothing(
    tmp_path: Path, change: dict[str, str], line: str, command: tuple[str, ...]
) -> None:
    db = tmp_path / "history.db"
    config = tmp_path / "config.toml"
    config.write_text(GOOD.format(db=db, **{**DEFAULTS, **change}))
    result = scanwatch(config, *command)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "\r" not in output and "\x00" not in output
    assert line in output, output
    assert "s3cr3t-value" not in output and "t0ken-value" not in output
    assert not db.exists()


@pytest.mark.parametrize("command", [pytest.param(("config", "check"), id="check"),
                                     pytest.param(("run", "--once"), id="run")])
def test_an_empty_file_is_refused_by_check_and_run(tmp_path: Path,
                                                   command: tuple[str, ...]) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    result = scanwatch(config, *command)
    assert result.returncode == 2
    assert f"{config}: holds no setting at all" in result.stdout + result.stderr
    assert not (tmp_path / "state").exists()
