"""Slack and JSON webhooks over HTTP (``requests``, which apprise brings), classified here.

apprise parses the URL (so every apprise spelling of a Slack or JSON URL keeps working); we
post ourselves, so that the status, Slack's error word and ``Retry-After`` are ours to read,
and every request carries ``X-Scanwatch-Message-Id`` (a receiver can drop a resend with it).

- Slack: 2xx is sent; 404 (no such hook), 410 (channel archived), 403 and the error words
  ``invalid_token``, ``no_service``, ``channel_not_found``, ``channel_is_archived``,
  ``action_prohibited``, ``no_team`` are permanent; 429 and 5xx are retried after
  ``Retry-After`` or backoff; any other 4xx (``invalid_payload``: our bug, not the receiver's)
  is permanent.
- JSON webhook: 2xx is sent; 401, 403, 404, 410 are permanent; 408, 425, 429 and 5xx are
  retried; another 4xx is permanent (the same request would be refused again).
- No answer (refused, reset, timeout, TLS failure): retried.
"""

from __future__ import annotations

from typing import Any

from daemon.alerts.transports.base import SendOutcome, permanent, sent, transient
from daemon.retry import parse_retry_after

TIMEOUT = (10.0, 30.0)  # connect, read: seconds
MESSAGE_ID_HEADER = "X-Scanwatch-Message-Id"
SLACK_PERMANENT_WORDS = frozenset({"invalid_token", "no_service", "channel_not_found",
                                   "channel_is_archived", "action_prohibited", "no_team",
                                   "team_disabled", "invalid_auth", "no_service_id"})
_RETRIED = frozenset({408, 425, 429})


def _post(url: str, payload: dict[str, Any], headers: dict[str, str],
          auth: tuple[str, str] | None = None, verify: bool = True,
          params: dict[str, str] | None = None) -> Any:
    """The response, or what went wrong without one, as a str."""
    import requests

    try:
        return requests.post(url, json=payload, headers=headers, auth=auth, timeout=TIMEOUT,
                             verify=verify, allow_redirects=False, params=params or None)
    except requests.Timeout:
        return "timed out"
    except requests.ConnectionError:
        return "connection failed"
    except requests.RequestException as exc:
        return type(exc).__name__


def _classify(response: Any, permanent_statuses: frozenset[int], words: frozenset[str]
              ) -> SendOutcome:
    if isinstance(response, str):
        return transient(f"no response ({response})")
    status = response.status_code
    word = response.text.strip()[:80] if response.text else ""
    said = f"HTTP {status}" + (f" {word}" if word and len(word) < 60 and " " not in word else "")
    if 200 <= status < 300:
        return sent()
    if status in _RETRIED or status >= 500:
        return transient(said, parse_retry_after(response.headers.get("Retry-After")))
    if status in permanent_statuses or word in words:
        return permanent(f"{said}: refused for good")
    return permanent(f"{said}: refused")


class SlackTransport:
    """A Slack incoming webhook (``slack://TA/TB/TC[/#channel]``), mrkdwn body as rendered."""

    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin

    def notify(self, title: str, body: str, body_format: str, *, message_id: str,
               text: str = "") -> SendOutcome:
        p = self.plugin
        url = f"{type(p).webhook_url}/{p.token_a}/{p.token_b}/{p.token_c}"
        channels = [c for c in p.channels if c] or [None]
        outcome = sent()
        for channel in channels:
            # apprise's hook payload (title and text in one attachment), plus the message id
            payload: dict[str, Any] = {
                "mrkdwn": True,
                "attachments": [{"title": title, "text": body, "mrkdwn_in": ["text"],
                                 "fallback": title,
                                 "footer": f"scanwatch message {message_id}"}]}
            if channel:
                payload["channel"] = channel if channel[0] in "#@" else f"#{channel}"
            outcome = _classify(_post(url, payload, {MESSAGE_ID_HEADER: message_id}),
                                frozenset({403, 404, 410}), SLACK_PERMANENT_WORDS)
            if not outcome.ok:
                return outcome
        return outcome


class JsonTransport:
    """A JSON webhook (``json://`` / ``jsons://``): apprise's JSON body, our classification.

    The body is apprise's documented shape (``version``, ``title``, ``message``, ``type``) plus
    ``message_id``; the URL's ``+Header=value`` headers and user:password are sent as apprise
    sends them.
    """

    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin

    def notify(self, title: str, body: str, body_format: str, *, message_id: str,
               text: str = "") -> SendOutcome:
        p = self.plugin
        scheme = "https" if p.secure else "http"
        port = f":{p.port}" if p.port else ""
        url = f"{scheme}://{p.host}{port}{p.fullpath or '/'}"
        headers = {"User-Agent": "scanwatch", **p.headers, MESSAGE_ID_HEADER: message_id}
        auth = (p.user or "", p.password or "") if p.user else None
        payload = {"version": "1.0", "title": title, "message": body, "type": "info",
                   "message_id": message_id}
        return _classify(_post(url, payload, headers, auth, p.verify_certificate, p.params),
                         frozenset({401, 403, 404, 410}), frozenset())
