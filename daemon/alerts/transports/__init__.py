"""Transports: one small class per channel that sends and classifies its own failures.

``send(url, title, body, body_format, message_id=…)`` picks the class for the URL's scheme
(``slack``/``slacks`` → ``http.SlackTransport``, ``json``/``jsons`` → ``http.JsonTransport``,
``mailto``/``mailtos`` → ``email.EmailTransport``, anything else apprise knows →
``generic.AppriseTransport``) and runs it in a worker thread: every transport blocks. This
package is the only importer of apprise (lazily: it costs 0.3 s and 36 MB on first use). No
transport patches ``requests`` or anything else process-wide.
"""

from __future__ import annotations

import asyncio
from typing import Any

from daemon.alerts.transports.base import (
    ERRORS,
    ErrorLog,
    RetryPolicy,
    SendOutcome,
    Transport,
    permanent,
)

__all__ = ["ERRORS", "ErrorLog", "RetryPolicy", "SendOutcome", "Transport", "email_text_part",
           "scheme_known", "send", "transport_for"]


def scheme_known(url: str) -> bool:
    """Whether apprise has a plugin for the scheme of ``url`` (what a receiver URL needs)."""
    from apprise.manager_plugins import NotificationManager

    scheme = url.partition("://")[0].lower()
    known: list[str] = NotificationManager().schemas()  # type: ignore[no-untyped-call]
    return bool(scheme) and scheme in known


def transport_for(url: str) -> Transport | None:
    """The transport for a receiver URL, or None when apprise cannot use the URL."""
    import apprise

    plugin: Any = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return None
    scheme = url.partition("://")[0].lower()
    if scheme in ("slack", "slacks") and getattr(plugin, "mode", "") == "hook":
        from daemon.alerts.transports.http import SlackTransport

        return SlackTransport(plugin)
    if scheme in ("json", "jsons"):
        from daemon.alerts.transports.http import JsonTransport

        return JsonTransport(plugin)
    if scheme in ("mailto", "mailtos"):
        from daemon.alerts.transports.email import EmailTransport

        return EmailTransport(plugin)
    from daemon.alerts.transports.generic import AppriseTransport

    return AppriseTransport(plugin)


def _send_sync(url: str, title: str, body: str, body_format: str, message_id: str,
               text: str) -> SendOutcome:
    transport = transport_for(url)
    if transport is None:
        return permanent("not a usable apprise URL")
    return transport.notify(title, body, body_format, message_id=message_id, text=text)


async def send(url: str, title: str, body: str, body_format: str, *, message_id: str = "",
               text: str = "") -> SendOutcome:
    """Send one rendered message to one URL in a worker thread; never raises for a failure.

    ``text`` is the plain-text alternative of an HTML body (email); ``message_id`` goes in the
    ``X-Scanwatch-Message-Id`` header (HTTP and email) and the body where the channel has one.
    """
    return await asyncio.to_thread(_send_sync, url, title, body, body_format, message_id, text)


def email_text_part(html: str) -> str:
    """A plain-text rendering of an HTML body, as apprise converts it (for the demo's files)."""
    from apprise import NotifyFormat
    from apprise.conversion import convert_between

    return str(convert_between(NotifyFormat.HTML, NotifyFormat.TEXT, html))  # type: ignore[no-untyped-call]
