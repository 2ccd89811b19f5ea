"""Logging: structlog events on stderr, JSON under systemd, with secrets redacted everywhere.

Every stdlib logger (httpx, apprise, urllib3, apscheduler, sqlalchemy) goes through the same
processor chain as scanwatch's own events, so the redaction covers their lines too: apprise
prints Slack webhook tokens at DEBUG, urllib3 request paths with their query at DEBUG, and httpx
full URLs (userinfo included) at INFO.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any


def _structlog_without_rich() -> Any:
    """structlog, imported without the rich it imports for pretty tracebacks (0.1 s of every
    command): scanwatch formats exceptions itself (``format_exc_info`` before either renderer).
    rich stays importable for what uses it (the progress of ``run --once``)."""
    blocked = "rich" not in sys.modules
    if blocked:
        sys.modules["rich"] = None  # type: ignore[assignment]  # an ImportError for structlog
    try:
        import structlog
    finally:
        if blocked:
            del sys.modules["rich"]
    return structlog


if TYPE_CHECKING:
    import structlog
else:
    structlog = _structlog_without_rich()

REDACTED = "***"

_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|authorization|api[_-]?key|cookie|credential", re.IGNORECASE
)
_SCRUBBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host → scheme://user:***@host (any scheme: https, mailtos, postgresql…)
    (re.compile(r"(?P<p>[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+@"), r"\g<p>***@"),
    # scheme://token@host (userinfo without a colon is a token for many apprise schemes)
    (re.compile(r"(?P<p>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/:@]+@"), r"\g<p>***@"),
    (re.compile(r"(?P<p>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=\-$]+", re.IGNORECASE),
     r"\g<p>***"),
    (re.compile(r"(?P<p>hooks\.slack\.com/services/)[^\s\"'?]+"), r"\g<p>***"),
    (re.compile(r"(?P<p>/services/)T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+"), r"\g<p>***"),
    (re.compile(r"(?P<p>slacks?://)[^\s\"']+"), r"\g<p>***"),
    # apprise URL forms that carry tokens in the path: discord://id/token, tgram://bot/…, etc.
    (re.compile(r"(?P<p>\b(?:discord|tgram|msteams|pover|pbul|gotify|ntfys?|matrixs?|"
                r"rocket|mmosts?|opsgenie|pagerduty|json|jsons|xml|xmls|form|forms)://)"
                r"[^\s\"']+"), r"\g<p>***"),
    (re.compile(r"(?P<p>\b(?:token|secret|password|pass|key|apikey|api_key|access_token)=)"
                r"[^&\s\"']+", re.IGNORECASE), r"\g<p>***"),
)


_KNOWN_SECRETS: set[str] = set()
MIN_SECRET = 6  # shorter values would redact ordinary words


def register_secret(value: str) -> None:
    """A value the configuration resolved as secret: redacted wherever it appears, whatever
    the scheme or format that carries it (the patterns below only know common shapes)."""
    if len(value) >= MIN_SECRET:
        _KNOWN_SECRETS.add(value)


def scrub(text: str) -> str:
    """Remove the secrets that can hide inside a free-text string (URLs, auth headers)."""
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, repl in _SCRUBBERS:
        text = pattern.sub(repl, text)
    return text


def _redact_value(key: str | None, value: Any) -> Any:
    if key is not None and _SECRET_KEY.search(key) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(None, v) for v in value]
    if isinstance(value, BaseException):
        return scrub(str(value))
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: secrets by key name, and secrets inside any string value."""
    for key in list(event_dict):
        if key in ("_record", "_from_structlog"):
            continue
        event_dict[key] = _redact_value(key if key != "event" else None, event_dict[key])
    return event_dict


def _use_json(stream: Any) -> bool:
    if os.environ.get("JOURNAL_STREAM"):
        return True
    isatty = getattr(stream, "isatty", None)
    return not (isatty and isatty())


def configure(level: str = "info", stream: Any = None) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr) through one redacting chain."""
    stream = stream if stream is not None else sys.stderr
    numeric = getattr(logging, level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if _use_json(stream)
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Third-party chatter stays at WARNING unless the user asked for debug.
    for noisy in ("httpx", "httpcore", "apprise", "apscheduler", "aiosmtpd", "urllib3"):
        logging.getLogger(noisy).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
    # SQLAlchemy's INFO/DEBUG are per-statement and per-mapper: never useful in the service log.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )


def get(name: str = "scanwatch") -> Any:
    return structlog.get_logger(name)
