"""Value checks for ``daemon/config.py``: each turns one TOML value into a typed one, or says why.

A check is a callable ``(ctx, where, value)`` returning the parsed value, or ``BAD`` after it has
recorded one problem line on ``ctx``: ``<where>: must be <what is valid>, got <value>``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from daemon.model import Severity

BAD: Any = object()
Check = Callable[["Ctx", str, Any], Any]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_DURATION_HINT = 'a duration such as "90s", "5m", "2h", "7d", "1w" or "1h30m"'
_SIZE = re.compile(r"^(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$")
_SIZE_UNIT = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3,
              "KB": 1000, "MB": 1000**2, "GB": 1000**3, None: 1}


@dataclass
class Ctx:
    """Where problems and warnings are collected while one file is read."""

    environ: Mapping[str, str]
    strict: bool
    base: Path  # relative paths in the file are relative to its directory
    today: date
    receiver_schemes: bool = True  # ask apprise about each receiver URL's scheme
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}")

    def missing(self, where: str, message: str) -> None:
        """Something only the service's environment can provide: an error only when strict."""
        (self.problem if self.strict else self.warn)(where, message)


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    for typ, label in ((str, "a string"), (int, "an integer"), (float, "a float"),
                       (list, "an array"), (dict, "a table"), (datetime, "a date-time"),
                       (date, "a date"), (time, "a time")):
        if isinstance(value, typ):
            return label
    return type(value).__name__


def show(value: Any, *, secret: bool = False, limit: int = 60) -> str:
    """The value as TOML would spell it (shortened), or only its type when it may be a secret."""
    if secret:
        return kind(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        short = value if len(value) <= limit else value[: limit - 3] + "..."
        return json.dumps(short, ensure_ascii=False)
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, (date, time)):
        text = value.isoformat()
    elif isinstance(value, list):
        text = "[" + ", ".join(show(v, limit=limit) for v in value) + "]"
    else:
        return kind(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(word: Any, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    if not close and isinstance(word, str):
        # Case-only slips ("critical" for "Critical") are worth a hint too.
        close = [o for o in options if o.lower() == word.lower()][:1]
    return f'; did you mean "{close[0]}"?' if close else ""


def str_(ctx: Ctx, where: str, value: Any) -> Any:
    if not isinstance(value, str):
        ctx.problem(where, f"must be a string, got {show(value)}")
        return BAD
    return value


def name(ctx: Ctx, where: str, value: Any) -> Any:
    if not isinstance(value, str) or not _NAME.match(value):
        ctx.problem(where, 'must be a name of letters, digits, ".", "_" or "-" such as '
                    f'"prod-harbor", got {show(value)}')
        return BAD
    return value


def bool_(ctx: Ctx, where: str, value: Any) -> Any:
    if not isinstance(value, bool):
        ctx.problem(where, f"must be true or false, got {show(value)}")
        return BAD
    return value


def int_(minimum: int) -> Check:
    def check(ctx: Ctx, where: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            ctx.problem(where, f"must be an integer >= {minimum}, got {show(value)}")
            return BAD
        return value

    return check


MAX_NUMBER = 1e6  # requests per second: anything above is a typo, and inf would never wait


def number_gt0(ctx: Ctx, where: str, value: Any) -> Any:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 < value <= MAX_NUMBER):
        ctx.problem(where, f"must be a number > 0 and <= {MAX_NUMBER:.0f}, got {show(value)}")
        return BAD
    return float(value)


def share(ctx: Ctx, where: str, value: Any) -> Any:
    """A share of a whole: a number greater than 0 and at most 1 (0.5 is half)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        ctx.problem(where, f"must be a number > 0 and <= 1 such as 0.5, got {show(value)}")
        return BAD
    return float(value)


def parse_duration(text: str) -> timedelta | None:
    """``"90s"``, ``"5m"``, ``"2h"``, ``"7d"``, ``"1w"``, ``"1h30m"``; None if it is not one."""
    compact = text.strip().lower().replace(" ", "")
    if compact == "0":
        return timedelta(0)
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        return None
    try:
        return timedelta(seconds=sum(float(n) * _UNIT[u] for n, u in parts))
    except OverflowError:  # "999999999999w": past what a timedelta holds
        return None


def format_duration(value: timedelta) -> str:
    """The inverse of ``parse_duration`` for whole seconds: ``timedelta(hours=1, minutes=30)`` →
    ``"1h30m"``."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    out = ""
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNIT[unit])
        if count:
            out += f"{count}{unit}"
    return out


def format_size(size: int) -> str:
    """``33554432`` → ``"32 MiB"``: the largest binary unit that divides it, else bytes."""
    for unit in ("GiB", "MiB", "KiB"):
        if size % _SIZE_UNIT[unit] == 0:
            return f"{size // _SIZE_UNIT[unit]} {unit}"
    return f"{size} B"


def size(minimum: int, maximum: int) -> Check:
    """A byte count: an integer, or a string such as ``"32MiB"``, ``"512 KiB"``, ``"4MB"``."""
    def check(ctx: Ctx, where: str, value: Any) -> Any:
        parsed: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            parsed = value
        elif isinstance(value, str) and (found := _SIZE.match(value.strip())):
            parsed = int(found[1]) * _SIZE_UNIT[found[2]]
        if parsed is None or not minimum <= parsed <= maximum:
            ctx.problem(where, f'must be a size from {format_size(minimum)} to '
                        f'{format_size(maximum)} such as "32MiB" or "512KiB", got {show(value)}')
            return BAD
        return parsed

    return check


MAX_DURATION = timedelta(days=3650)  # ten years: more is a typo (and overflows timers)


def duration(*, zero: bool = False, maximum: timedelta = MAX_DURATION) -> Check:
    def check(ctx: Ctx, where: str, value: Any) -> Any:
        parsed = parse_duration(value) if isinstance(value, str) else None
        if (parsed is None or parsed > maximum
                or (parsed <= timedelta(0) and not (zero and parsed == timedelta(0)))):
            floor = "" if zero else "more than zero, "
            ctx.problem(where, f"must be {_DURATION_HINT} ({floor}at most "
                        f"{format_duration(maximum)}), got {show(value)}")
            return BAD
        return parsed

    return check


def _string_list(ctx: Ctx, where: str, value: Any, example: str) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        ctx.problem(where, f"must be a list of {example}, got {show(value)}")
        return BAD
    return tuple(value)


def globs(ctx: Ctx, where: str, value: Any) -> Any:
    return _string_list(ctx, where, value, 'glob patterns such as ["payments", "web-*"]')


def names(ctx: Ctx, where: str, value: Any) -> Any:
    return _string_list(ctx, where, value, 'names such as ["prod-harbor"]')


def one_of(options: tuple[str, ...]) -> Check:
    def check(ctx: Ctx, where: str, value: Any) -> Any:
        if value not in options:
            valid = ", ".join(json.dumps(o) for o in options)
            ctx.problem(where, f"must be one of {valid}, got {show(value)}"
                        + did_you_mean(value, options))
            return BAD
        return value

    return check


def list_of(options: tuple[str, ...], noun: str) -> Check:
    def check(ctx: Ctx, where: str, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            ctx.problem(where, f"must be a list of {noun}s from {', '.join(options)}, "
                        f"got {show(value)}")
            return BAD
        wrong = [v for v in value if v not in options]
        for item in wrong:
            ctx.problem(where, f"unknown {noun} {show(item)}" + (
                did_you_mean(item, options) or f"; valid: {', '.join(options)}"))
        return BAD if wrong else tuple(value)

    return check


def severity(ctx: Ctx, where: str, value: Any) -> Any:
    level = Severity.from_name(value) if isinstance(value, str) else None
    if level is None:
        labels = [s.label for s in sorted(Severity, reverse=True)]
        ctx.problem(where, f"must be a severity: {', '.join(labels)} (any case), got "
                    f"{show(value)}" + did_you_mean(str(value).capitalize(), labels))
        return BAD
    return level


def date_(ctx: Ctx, where: str, value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    ctx.problem(where, f"must be a date such as 2027-01-31, got {show(value)}")
    return BAD


# The crontab nicknames (crontab(5)), stored as the expression they stand for.
CRON_ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
                "@annually": "0 0 1 1 *"}
# Zone names that are abbreviations, not places (EST is a fixed UTC-5 all year, which New York
# is not in summer): a region zone says what is meant.
AMBIGUOUS_ZONES = {"CET": "Europe/Paris", "EET": "Europe/Athens", "MET": "Europe/Paris",
                   "WET": "Europe/Lisbon", "EST": "America/New_York", "MST": "America/Denver",
                   "HST": "Pacific/Honolulu", "EST5EDT": "America/New_York",
                   "CST6CDT": "America/Chicago", "MST7MDT": "America/Denver",
                   "PST8PDT": "America/Los_Angeles"}


# Abbreviations people write that are no IANA zone at all: the region zone usually meant. (A
# spelling-distance guess would say "MST" for "PST", an hour and a state away.)
ABBREVIATIONS = {"PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
                 "MDT": "America/Denver", "CST": "America/Chicago", "CDT": "America/Chicago",
                 "EDT": "America/New_York", "AKST": "America/Anchorage",
                 "AKDT": "America/Anchorage", "BST": "Europe/London", "IST": "Asia/Kolkata",
                 "CEST": "Europe/Paris", "EEST": "Europe/Athens", "WEST": "Europe/Lisbon",
                 "JST": "Asia/Tokyo", "KST": "Asia/Seoul", "SGT": "Asia/Singapore",
                 "HKT": "Asia/Hong_Kong", "AEST": "Australia/Sydney",
                 "AEDT": "Australia/Sydney", "NZST": "Pacific/Auckland",
                 "NZDT": "Pacific/Auckland"}


def cron(ctx: Ctx, where: str, value: Any) -> Any:
    from cronsim import CronSim, CronSimError

    if isinstance(value, str) and value.strip().lower() in CRON_ALIASES:
        return CRON_ALIASES[value.strip().lower()]

    hint = ('must be a 5-field crontab expression (minute hour day-of-month month day-of-week, '
            'day-of-week 0 = Sunday) such as "0 2 * * *", or @hourly, @daily, @weekly, @monthly')
    if not isinstance(value, str) or len(value.split()) != 5:
        ctx.problem(where, f"{hint}, got {show(value)}")
        return BAD
    try:
        CronSim(value, datetime(2000, 1, 1))
    except (CronSimError, ValueError) as exc:
        ctx.problem(where, f"{hint}, got {show(value)} ({str(exc).lower()})")
        return BAD
    return value


def timezone(ctx: Ctx, where: str, value: Any) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    if isinstance(value, str) and value:
        try:
            ZoneInfo(value)
            if value in AMBIGUOUS_ZONES:
                ctx.warn(where, f"{show(value)} is an abbreviation, not a place: name the "
                         f"region zone meant, such as \"{AMBIGUOUS_ZONES[value]}\"")
            return value
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if isinstance(value, str) and value.strip().upper() in ABBREVIATIONS:
        hint = (f"; that is an abbreviation, not a place: name the region zone meant, such as "
                f"\"{ABBREVIATIONS[value.strip().upper()]}\"")
    elif isinstance(value, str):
        # Only places are suggested: a near spelling among the abbreviations is a different
        # offset, not a typo's fix.
        places = [z for z in available_timezones()
                  if "/" in z or z in ("UTC", "GMT") or not z.isupper()]
        hint = did_you_mean(value, places)
    else:
        hint = ""
    ctx.problem(where, f'must be an IANA time zone such as "Europe/Berlin" or "UTC", got '
                f"{show(value)}{hint}")
    return BAD


def url(ctx: Ctx, where: str, value: Any) -> Any:
    hint = 'must be an http(s) URL with a host such as "https://harbor.example.com"'
    if not isinstance(value, str):
        ctx.problem(where, f"{hint}, got {show(value)}")
        return BAD
    if _CONTROL.search(value):
        ctx.problem(where, f"{hint}, without spaces or control characters (NUL, CR, LF), got "
                    f"{show(_CONTROL.sub(chr(0xFFFD), value))}")
        return BAD
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is not None and (parts.username or parts.password):
        # The value may hold a password: do not repeat it.
        ctx.problem(where, "must not carry credentials; use username and password (or "
                    "password_file)")
        return BAD
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        ctx.problem(where, f"{hint}, got {show(value)}")
        return BAD
    return value.rstrip("/")


def listen(ctx: Ctx, where: str, value: Any) -> Any:
    if value == "":
        return ""
    if isinstance(value, str):
        host, _, port = value.rpartition(":")
        if host and port.isdigit() and 0 <= int(port) < 65536:
            return value
    ctx.problem(where, 'must be "HOST:PORT" such as "127.0.0.1:9468" (port 0: any free port), '
                f'or "" for no listener, got {show(value)}')
    return BAD


def advisory_template(ctx: Ctx, where: str, value: Any) -> Any:
    """An http(s) URL template holding ``{id}`` (``[daemon] advisory_url``)."""
    if isinstance(value, str) and "{id}" not in value:
        ctx.problem(where, 'must hold "{id}" where the vulnerability id goes, such as '
                    f'"https://nvd.nist.gov/vuln/detail/{{id}}", got {show(value)}')
        return BAD
    checked = url(ctx, where, value.replace("{id}", "ID") if isinstance(value, str) else value)
    return BAD if checked is BAD else value
