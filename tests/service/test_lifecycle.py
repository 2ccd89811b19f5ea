"""sd_notify talks to a real datagram socket; the watchdog interval follows systemd's variables."""

from __future__ import annotations

import os
import socket

import pytest

from daemon.service.lifecycle import sd_notify, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_it_sends_every_line_in_one_datagram(notify_socket):
    assert sd_notify("READY=1", "STATUS=idle") is True
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=idle"


def test_it_says_false_outside_systemd(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False


def test_it_survives_a_socket_that_is_gone(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sd_notify("READY=1") is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        pytest.param("20000000", None, 10.0, id="half-of-usec"),
        pytest.param("20000000", "self", 10.0, id="meant-for-us"),
        pytest.param("20000000", "1", None, id="meant-for-another-process"),
        pytest.param(None, None, None, id="off"),
        pytest.param("garbage", None, None, id="unreadable"),
    ],
)
def test_it_reads_the_watchdog_interval(monkeypatch, usec, pid, expected):
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert watchdog_interval() == expected


def test_the_queue_gauge_counts_scans_not_yet_ended():
    from types import SimpleNamespace

    from daemon.service.daemon import QueueGauge
    from daemon.service.metrics import Metrics

    metrics = Metrics()
    gauge = QueueGauge(metrics)

    def job(registry: str):
        ref = SimpleNamespace(registry=registry)
        return SimpleNamespace(artifact=SimpleNamespace(ref=ref), outcome="", ours=True)

    a, b, c = job("prod"), job("prod"), job("stage")
    for j in (a, b, c):
        gauge(j)
    a.outcome = "complete"
    gauge(a)
    depth = {s.labels["registry"]: s.value
             for s in metrics.queue_depth.collect()[0].samples}
    assert depth == {"prod": 1.0, "stage": 1.0}
