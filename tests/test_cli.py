"""The `scanwatch` command line: help everywhere, exit codes, and a --help that stays light."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import __version__
from daemon.cli import build_parser, command_module, main

REPO = Path(__file__).resolve().parent.parent
# asyncio alone costs ~60 ms: command modules import it in their handlers.
HEAVY = ("apprise", "sqlmodel", "sqlalchemy", "httpx", "apscheduler", "prometheus_client",
         "asyncio")


def scanwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("scanwatch")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "daemon"]
    full_env = {"PATH": os.environ.get("PATH", ""), **(env or {})}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=full_env,
                          cwd=REPO, timeout=60)


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*prefix, name))
    return found


COMMANDS = _commands(build_parser())


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "scanwatch")
def test_every_command_has_help(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: scanwatch {' '.join(command)}".rstrip())
    assert len(out.splitlines()) > 3


def _sub(parser: argparse.ArgumentParser, command: tuple[str, ...]) -> argparse.ArgumentParser:
    for name in command:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("command", [c for c in COMMANDS if c],
                         ids=lambda c: " ".join(c))
def test_a_command_alone_parses_as_in_the_whole_line(command: tuple[str, ...]) -> None:
    """``main`` builds only the named command's parser: its help, options and defaults are
    those of the whole command line."""
    module = command_module([*command, "--help"])
    assert module is not None
    alone, whole = _sub(build_parser(module), command), _sub(build_parser(), command)
    assert alone.format_help() == whole.format_help()
    def shape(p: argparse.ArgumentParser) -> list[tuple[object, ...]]:
        return [(a.dest, a.default, list(a.choices or ()), a.required) for a in p._actions]

    assert shape(alone) == shape(whole)


@pytest.mark.parametrize(("argv", "module"), [
    (["findings", "--limit", "3"], "findings"),
    (["--config", "findings", "status"], "status"),  # "findings" is the config's path there
    (["--log-level", "debug", "scan-log", "x"], "scan_log"),
    (["--config=c.toml", "alerts", "preview"], "alerts"),
    (["-h", "findings"], None), (["--version"], None), (["bogus"], None), ([], None),
])
def test_the_command_is_found_past_the_common_options(argv: list[str], module: str | None
                                                      ) -> None:
    assert command_module(argv) == module


def test_config_is_a_registered_command() -> None:
    assert ("config", "check") in COMMANDS and ("config", "init") in COMMANDS


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"scanwatch {__version__}"


@pytest.mark.parametrize(("argv", "usage"), [
    pytest.param([], "usage: scanwatch ", id="no-command"),
    pytest.param(["config"], "usage: scanwatch config ", id="group-alone"),
])
def test_a_bare_group_prints_its_help_and_exits_2(
    argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(usage)


@pytest.mark.parametrize("argv", [
    pytest.param(["no-such-command"], id="unknown-command"),
    pytest.param(["config", "check", "--format", "yaml"], id="bad-choice"),
    pytest.param(["config", "init"], id="missing-argument"),
])
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_help_imports_none_of_the_heavy_packages() -> None:
    code = (
        "import sys\n"
        "import daemon.cli\n"
        "parser = daemon.cli.build_parser()\n"
        "try:\n"
        "    parser.parse_args(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(m for m in sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stderr.split())
    assert "daemon.commands.config" in loaded  # the check would be empty otherwise
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []


def test_a_missing_config_is_one_line_naming_path_and_lookup(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = scanwatch("config", "check", env={"SCANWATCH_CONFIG": str(missing)})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"scanwatch: {missing}: no such file (the configuration is looked for at --config PATH, "
        "else $SCANWATCH_CONFIG, else /etc/scanwatch/config.toml)"]


@pytest.mark.parametrize(("where", "rc"), [
    pytest.param("flag-before", 0, id="config-before-command"),
    pytest.param("flag-after", 0, id="config-after-command"),
    pytest.param("env", 0, id="SCANWATCH_CONFIG"),
    pytest.param("flag-wins", 0, id="flag-beats-env"),
])
def test_config_lookup_order(tmp_path: Path, where: str, rc: int) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[daemon]\nlisten = "127.0.0.1:9468"\n')
    bad = tmp_path / "missing.toml"
    argv, env = {
        "flag-before": (["--config", str(good), "config", "check"], {}),
        "flag-after": (["config", "check", "--config", str(good)], {}),
        "env": (["config", "check"], {"SCANWATCH_CONFIG": str(good)}),
        "flag-wins": (["config", "check", "--config", str(good)], {"SCANWATCH_CONFIG": str(bad)}),
    }[where]
    result = scanwatch(*argv, env=env)
    assert result.returncode == rc, result.stderr
    assert result.stdout.startswith("ok\n")
    assert str(good) in result.stdout


def test_config_init_into_a_missing_directory_exits_2(tmp_path: Path) -> None:
    result = scanwatch("config", "init", str(tmp_path / "no" / "dir" / "c.toml"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot write: No such file" in result.stderr


def test_an_unexpected_failure_is_one_line_and_exit_1(monkeypatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from daemon import cli
    from daemon.harbor import reports

    def locked(path):  # type: ignore[no-untyped-def]
        raise sqlite3.OperationalError("database is locked\nmore detail")

    monkeypatch.setattr(reports, "load_report_file", locked)
    code = cli.main(["report", "show", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines() == [
        "scanwatch: database error: database is locked (OperationalError; --log-level debug "
        "shows where)"]
