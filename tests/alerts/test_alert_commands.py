"""`scanwatch alerts preview`, `scanwatch alerts outbox` and `scanwatch notify test`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from alertkit import seeded_store

from daemon import cli
from daemon.alerts.deliver import deliver_pending
from daemon.alerts.group import RunContext
from daemon.alerts.outbox import build_and_queue
from daemon.config import load
from daemon.store import outbox as store_outbox
from tests.store.store_helpers import at

NOW = at(1) + timedelta(minutes=10)


def write_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
database = "sqlite:///{tmp_path / 'h.db'}"

[[receiver]]
name = "secops"
urls = ["json://127.0.0.1:{port}/hook"]
max_age = "30m"

[[route]]
name = "sec"
receivers = ["secops"]
events = ["new", "scan_failed"]
""")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_preview_renders_what_would_be_sent_and_sends_nothing(tmp_path, hook, capsys) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, hook.port)
    store = seeded_store(f"sqlite:///{tmp_path / 'h.db'}")
    store.close()
    code, out, _ = run_cli(capsys, "alerts", "preview", "--config", str(config))
    assert code == 0
    assert "=== to secops (text)" in out and "CVE-2026-0000" in out and "scan failed" in out
    code, out, _ = run_cli(capsys, "alerts", "preview", "--config", str(config), "--format",
                           "json")
    [doc] = json.loads(out)
    assert doc["schema"] == "scanwatch.alert/v2"
    code, out, _ = run_cli(capsys, "alerts", "outbox", "--config", str(config))
    assert out.strip() == "The outbox is empty." and hook.requests == []


def test_preview_agrees_with_the_run_about_a_route_added_later(tmp_path, hook, capsys) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, hook.port)
    store = seeded_store(f"sqlite:///{tmp_path / 'h.db'}")
    [_] = build_and_queue(store, load(config, strict=False), run_context=RunContext(), now=NOW)
    # The database has cursors; a new route starts at the newest event, old events unsent.
    config.write_text(config.read_text().replace('name = "sec"', 'name = "added-later"'))
    code, out, _ = run_cli(capsys, "alerts", "preview", "--config", str(config))
    assert (code, out.strip()) == (0, "Nothing would be sent.")
    assert build_and_queue(store, load(config, strict=False), run_context=RunContext(),
                           now=NOW + timedelta(minutes=1)) == []
    store.close()


def test_preview_with_a_bad_since_is_one_line_and_exit_2(tmp_path, hook, capsys) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, hook.port)
    seeded_store(f"sqlite:///{tmp_path / 'h.db'}").close()
    code, _, err = run_cli(capsys, "alerts", "preview", "--since", "last tuesday", "--config",
                           str(config))
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("scanwatch: --since 'last tuesday': expected")


async def test_outbox_lists_a_dead_lettered_message_with_its_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    config_path = write_config(tmp_path, 9)  # nothing listens on port 9
    store = seeded_store(f"sqlite:///{tmp_path / 'h.db'}")
    config = load(config_path, strict=False)
    build_and_queue(store, config, run_context=RunContext(name="nightly"), now=NOW)
    await deliver_pending(store, config, now_fn=lambda: NOW)
    await deliver_pending(store, config, now_fn=lambda: NOW + timedelta(hours=1))
    [row] = store_outbox.listing(store)
    store.close()
    code, out, _ = run_cli(capsys, "alerts", "outbox", "--config", str(config_path), "--format",
                           "json")
    [shown] = json.loads(out)
    assert code == 0 and shown["status"] == "dead" and shown["message_id"] == row.message_id
    # One real send; the pass that found it too old sent nothing and counts no attempt.
    assert "older than max_age" in shown["last_error"] and shown["attempts"] == 1
    code, out, _ = run_cli(capsys, "alerts", "outbox", "--status", "dead", "--config",
                           str(config_path))
    assert "dead" in out and "older than max_age" in out


def test_notify_test_sends_a_real_message(tmp_path, hook, capsys) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, hook.port)
    code, out, _ = run_cli(capsys, "notify", "test", "secops", "--config", str(config))
    assert code == 0 and "secops URL 1: sent" in out
    [payload] = hook.json_bodies()
    assert json.loads(payload["message"])["kind"] == "test"


@pytest.mark.parametrize(
    ("port", "code", "document"),
    [(None, 0, {"receiver": "secops", "ok": True, "error": None, "urls": 1}),
     (9, 1, {"receiver": "secops", "ok": False,
             "error": "URL 1: no response (connection failed)", "urls": 1})],
    ids=["sent", "unreachable-exit-1"],
)
def test_notify_test_reports_as_json(tmp_path, hook, capsys, port, code, document) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, port or hook.port)
    got, out, _ = run_cli(capsys, "notify", "test", "secops", "--format", "json", "--config",
                          str(config))
    assert (got, json.loads(out)) == (code, document)


@pytest.mark.parametrize(
    ("receiver", "port", "code", "reason"),
    [("secops", 9, 1, "receiver secops URL 1: no response (connection failed)"),
     ("nobody", 9, 2, "unknown receiver 'nobody' (configured: secops)")],
    ids=["unreachable-exit-1", "unknown-receiver-exit-2"],
)
def test_notify_test_fails_with_the_reason(tmp_path, capsys, receiver, port, code, reason) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, port)
    got, _, err = run_cli(capsys, "notify", "test", receiver, "--config", str(config))
    assert got == code and f"scanwatch: {reason}" in err


async def test_retry_and_drop_act_on_the_outbox_from_the_command_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """As subprocesses: a dead-lettered message is made due again by `alerts retry --dead`
    and by ID, then `alerts drop ID` deletes it; an unknown ID is one line, exit 2."""
    import subprocess

    from runkit import SCANWATCH, TIMEOUT

    config_path = write_config(tmp_path, 9)  # nothing listens on port 9
    store = seeded_store(f"sqlite:///{tmp_path / 'h.db'}")
    config = load(config_path, strict=False)
    build_and_queue(store, config, run_context=RunContext(name="nightly"), now=NOW)
    await deliver_pending(store, config, now_fn=lambda: NOW)
    await deliver_pending(store, config, now_fn=lambda: NOW + timedelta(hours=1))
    [row] = store_outbox.listing(store)
    assert row.status == "dead"

    def scanwatch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCANWATCH, "alerts", *args, "--config", str(config_path)],
                              capture_output=True, text=True, timeout=TIMEOUT)

    done = scanwatch("retry", "--dead")
    assert (done.returncode, done.stdout) == (0, "1 dead-lettered message(s) due again\n")
    [again] = store_outbox.listing(store)
    assert again.status == "pending" and again.dead_at is None
    assert again.next_attempt_at is not None and again.next_attempt_at > NOW
    by_id = scanwatch("retry", row.message_id[:14])
    assert (by_id.returncode, by_id.stdout) == (0, f"{row.message_id}: due again\n")
    unknown = scanwatch("drop", "no-such-message")
    assert unknown.returncode == 2
    assert unknown.stderr == ("scanwatch: no unsent outbox message 'no-such-message' "
                              "(see `scanwatch alerts outbox`)\n")
    dropped = scanwatch("drop", row.message_id[:14])
    assert (dropped.returncode, dropped.stdout) == (0, f"{row.message_id}: dropped\n")
    assert store_outbox.listing(store) == []
    store.close()
