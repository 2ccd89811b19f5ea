"""A real process killed (SIGKILL) at each point between queueing and marking sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from alertkit import seeded_store

from daemon.store import outbox as store_outbox
from daemon.store.db import open_store

DRIVER = Path(__file__).with_name("outbox_driver.py")
REPO = Path(__file__).resolve().parents[2]


def drive(url: str, port: int, phases: str, crash_at: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SCANWATCH_TEST_CRASH_AT"}
    if crash_at:
        env["SCANWATCH_TEST_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, str(DRIVER), url, str(port), phases], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("crash_at", "resent"),
    [("before_commit", 0), ("after_queue", 0), ("before_mark", 1)],
    ids=["killed-before-the-queue-commits", "killed-between-commit-and-send",
         "killed-between-send-and-mark"],
)
def test_every_message_arrives_after_a_kill_and_only_the_one_in_flight_twice(  # type: ignore[no-untyped-def]
    tmp_path: Path, hook, crash_at: str, resent: int
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    seeded_store(url).close()
    killed = drive(url, hook.port, "queue,deliver", crash_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    restarted = drive(url, hook.port, "queue,deliver")
    assert restarted.returncode == 0, restarted.stderr
    if resent:  # a third start finds nothing left to queue or send
        again = drive(url, hook.port, "queue,deliver")
        assert json.loads(again.stdout.strip().splitlines()[-1]) == {"queued": [], "sent": 0}
    paths = Counter(path for path, _ in hook.requests)
    # Two receivers, one message each; the kill before the mark resends the one in flight.
    assert sorted(paths.values()) == sorted([1, 1 + resent])
    assert set(paths) == {"/hook", "/ops"}
    store = open_store(url)
    try:
        rows = store_outbox.listing(store)
        assert [r.status for r in rows] == ["sent", "sent"]
    finally:
        store.close()
