"""Every other apprise scheme (Teams, Matrix, ntfy, …): apprise's own ``send``, unclassified.

apprise reports these as a boolean, so a failure is transient (retried until the receiver's
``max_age``); only a URL apprise cannot use is permanent. The plugin's ``send()`` is called
directly: the renderer already produced the channel's markup and size, and apprise's own
conversion would re-escape it. Its self-throttling is off: the worker paces itself.
"""

from __future__ import annotations

from typing import Any

from daemon.alerts.transports.base import SendOutcome, sent, transient


class AppriseTransport:
    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin

    def notify(self, title: str, body: str, body_format: str, *, message_id: str,
               text: str = "") -> SendOutcome:
        import apprise

        self.plugin.request_rate_per_sec = 0
        try:
            ok = bool(self.plugin.send(body=body, title=title,
                                       notify_type=apprise.NotifyType.INFO,
                                       body_format=apprise.NotifyFormat(body_format)))
        except Exception as exc:  # a plugin crash is one failed attempt, not a dead worker
            return transient(f"{type(exc).__name__} in apprise")
        return sent() if ok else transient(f"{self.plugin.service_name} refused or unreachable")
