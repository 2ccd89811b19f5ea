"""Fixtures of the alert tests: a real HTTP server for webhooks, and Slack's hook pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alertkit import HookServer


@pytest.fixture
def hook() -> Iterator[HookServer]:
    """A real HTTP server on 127.0.0.1 (scripted answers, recorded requests)."""
    server = HookServer()
    yield server
    server.close()


@pytest.fixture
def slack_to_hook(hook: HookServer, monkeypatch: pytest.MonkeyPatch) -> HookServer:
    """Slack's incoming-webhook base URL (apprise's, which our transport reads) → ``hook``."""
    from apprise.plugins.slack import NotifySlack

    monkeypatch.setattr(NotifySlack, "webhook_url", f"http://127.0.0.1:{hook.port}/services")
    return hook
