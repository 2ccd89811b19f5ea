"""Load and validate the TOML configuration into the typed values of ``daemon/config_types.py``.

``load()`` reports every problem at once, one line each, with its TOML path (a table by its
name where it has one, else by its 1-based position), the offending value (never a secret)
and what would be valid::

    registry[prod-harbor].requests_per_second: must be a number > 0, got "fast"

Secrets come from ``"${ENV_NAME}"`` (whole value or inside a URL) or from a ``*_file`` key, and
are resolved here into ``Secret`` values. With ``strict=False`` (``config check``: the service's
environment may differ from the shell's) an unset variable or a missing file is a warning; with
``strict=True`` (``run``) it is an error.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon import config_types as ct
from daemon.config_checks import (
    BAD,
    Ctx,
    advisory_template,
    bool_,
    cron,
    date_,
    did_you_mean,
    duration,
    globs,
    int_,
    list_of,
    listen,
    name,
    names,
    number_gt0,
    one_of,
    severity,
    share,
    show,
    size,
    str_,
    timezone,
    url,
)
from daemon.config_secrets import receiver_urls, secret_pair
from daemon.errors import ConfigError
from daemon.model import Severity

LOOKUP_ORDER = "--config PATH, else $SCANWATCH_CONFIG, else /etc/scanwatch/config.toml"

Parser = Any  # a callable (ctx, path, value) -> parsed value or BAD

SECTIONS = ("daemon", "registry", "schedule", "receiver", "route", "ignore", "sla", "feed", "vex")

DAEMON_KEYS: dict[str, Parser] = {
    "database": str_,
    "listen": listen,
    "stop_timeout": duration(),
    "max_scans_in_flight": int_(1),
    "run_timeout": duration(),
    "outbox_drain_timeout": duration(zero=True),
    "lease_ttl": duration(maximum=timedelta(minutes=10)),  # several instances on PostgreSQL
    "public_url": url,
    "web_users_file": str_,
    "advisory_url": advisory_template,
}
REGISTRY_KEYS: dict[str, Parser] = {
    "name": name,
    "url": url,
    "username": str_,
    "password": None,  # secrets are handled apart
    "password_file": None,
    "webhook_secret": None,
    "webhook_secret_file": None,
    "projects": globs,
    "exclude_projects": globs,
    "repositories": globs,
    "exclude_repositories": globs,
    "requests_per_second": number_gt0,
    "burst": int_(1),
    "max_concurrent_requests": int_(1),
    "max_scans_in_flight": int_(1),
    "timeout": duration(),
    "max_retries": int_(0),
    "verify_tls": bool_,
    "ca_bundle": str_,
    "use_harbor_allowlist": bool_,
    "max_response_size": size(64 * 1024, 1024**3),
    "max_report_size": size(64 * 1024, 1024**3),
    "max_removed_share": share,
    "base_images": globs,
    "read_manifests": bool_,
}
SCHEDULE_KEYS: dict[str, Parser] = {
    "name": name,
    "cron": cron,
    "registries": names,
    "timezone": timezone,
    "select": list_of(ct.ALL_LANES, "lane"),
    "stale_after": duration(),
    "failed_backoff": duration(),
    "max_scans": int_(0),
    "jitter": duration(zero=True),
    "on_missed": one_of(("run_once", "skip")),
    "tags": globs,
    "only_pulled_within": duration(),
    "types": list_of(("IMAGE", "CHART", "CNAB"), "artifact type"),
}
RECEIVER_KEYS: dict[str, Parser] = {
    "name": name,
    "urls": None,
    "urls_file": None,
    "max_age": duration(),
    "format": one_of(("", "slack", "email", "json")),
}
ROUTE_KEYS: dict[str, Parser] = {
    "name": name,
    "receivers": names,
    "registries": globs,
    "projects": globs,
    "repositories": globs,
    "min_severity": severity,
    "events": list_of(ct.EVENTS, "event"),
    "group": one_of(("immediate", "digest")),
    "digest_cron": cron,
    "digest_timezone": timezone,
    "escalate_to": names,
    "continue": bool_,
    "repeat_open_every": duration(),
    "heartbeat": bool_,
    "kev": bool_,
    "min_epss": share,
}
IGNORE_KEYS: dict[str, Parser] = {
    "vulnerability": str_,
    "package": str_,
    "registries": globs,
    "projects": globs,
    "repositories": globs,
    "reason": str_,
    "expires": date_,
}
FEED_KEYS: dict[str, Parser] = {
    "name": one_of(ct.FEED_KINDS),
    "url": str_,
    "cron": cron,
    "timezone": timezone,
    "timeout": duration(),
    "max_retries": int_(0),
    "max_size": size(64 * 1024, 1024**3),
    "stale_after": duration(),
    "epss_threshold": share,
    "epss_percentile": share,
}
VEX_KEYS: dict[str, Parser] = {"name": name, "path": str_, "url": url}
SLA_KEYS = tuple(s.label for s in sorted(Severity, reverse=True)) + ("due_soon", "kev_due_date")

REQUIRED = {
    "registry": ("name", "url", "username"),
    "schedule": ("name", "cron", "registries"),
    "receiver": ("name",),
    "route": ("receivers",),
    "ignore": ("reason", "expires"),
    "feed": ("name",),
    "vex": ("name",),
}
HINTS = {
    "name": 'a name such as "prod-harbor"',
    "url": 'an http(s) URL such as "https://harbor.example.com"',
    "username": 'a user name such as "robot$scanwatch"',
    "cron": 'a 5-field crontab expression such as "0 2 * * *"',
    "registries": 'a list of registry names such as ["prod-harbor"]',
    "receivers": 'a list of receiver names such as ["secops-slack"]',
    "reason": "a string saying why the finding is accepted",
    "expires": "a date such as 2027-01-31",
}


def default_database(environ: Mapping[str, str] | None = None) -> str:
    """The history database without ``[daemon] database``, never relative to the current
    directory: ``$STATE_DIRECTORY/history.db`` under systemd (``StateDirectory=``), else the
    XDG state directory, ``$XDG_STATE_HOME/scanwatch/history.db`` (by default
    ``~/.local/state/scanwatch/history.db``)."""
    env = os.environ if environ is None else environ
    state = env.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return f"sqlite:///{Path(state) / 'history.db'}"
    xdg = env.get("XDG_STATE_HOME", "")
    if not xdg or not Path(xdg).is_absolute():  # the spec: a relative value is ignored
        home = env.get("HOME") or str(Path.home())
        xdg = str(Path(home) / ".local" / "state")
    return f"sqlite:///{Path(xdg) / 'scanwatch' / 'history.db'}"


@dataclass
class Outcome:
    """What ``analyse`` found: a Config when there are no problems, and every line to show."""

    config: ct.Config | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load(
    path: Path | str,
    *,
    strict: bool = True,
    environ: Mapping[str, str] | None = None,
    today: date | None = None,
    receiver_schemes: bool = True,
) -> ct.Config:
    """Read, validate and resolve the file; raise ConfigError listing every problem.

    ``receiver_schemes=False`` skips asking apprise whether it knows each receiver URL's scheme
    (loading its hundred plugins costs half a second): for the commands that send nothing."""
    outcome = analyse(path, strict=strict, environ=environ, today=today,
                      receiver_schemes=receiver_schemes)
    if outcome.config is None:
        raise ConfigError(outcome.problems, str(path))
    register_secrets(outcome.config)
    return outcome.config


def register_secrets(config: ct.Config) -> None:
    """Tell the log's redaction every secret this configuration resolved."""
    from daemon import log
    from daemon.config_secrets import secret_parts

    for registry in config.registries:
        log.register_secret(registry.password.reveal())
        if registry.webhook_secret is not None:
            log.register_secret(registry.webhook_secret.reveal())
    for receiver in config.receivers:
        for receiver_url in receiver.urls:
            for part in secret_parts(receiver_url.reveal(), every_query=True):
                log.register_secret(part)
    for part in secret_parts(config.daemon.database):
        log.register_secret(part)


def analyse(
    path: Path | str,
    *,
    strict: bool = True,
    environ: Mapping[str, str] | None = None,
    today: date | None = None,
    receiver_schemes: bool = True,
) -> Outcome:
    """Like ``load`` but returns problems and warnings instead of raising (``config check``)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Outcome(None, [f"no such file (the configuration is looked for at {LOOKUP_ORDER})"])
    except IsADirectoryError:
        return Outcome(None, ["is a directory, not a configuration file"])
    except OSError as exc:
        return Outcome(None, [f"cannot read the file: {exc.strerror or exc}"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Outcome(None, [f"not UTF-8 text (bad byte at offset {exc.start}); is it TOML?"])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Outcome(None, [_syntax_message(str(exc), len(text.splitlines()) or 1)])
    if not data:
        # run would find nothing to do: refuse it here too, so that check and run agree.
        return Outcome(None, ["holds no setting at all (a starter: scanwatch config init)"])
    ctx = Ctx(
        environ=os.environ if environ is None else environ,
        strict=strict,
        base=path.resolve().parent,
        today=today or date.today(),
        receiver_schemes=receiver_schemes,
    )
    config = _build(ctx, data, str(path))
    if ctx.problems:
        return Outcome(None, ctx.problems, ctx.warnings)
    return Outcome(config, [], ctx.warnings)


def _syntax_message(message: str, last_line: int) -> str:
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    what = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    what = what[:1].lower() + what[1:]
    if found:
        return f"line {found[1]}, column {found[2]}: TOML syntax error: {what}"
    return f"line {last_line} (the end of the file): TOML syntax error: {what}"


def _build(ctx: Ctx, data: dict[str, Any], source: str) -> ct.Config:
    for key, value in data.items():
        if key not in SECTIONS:
            ctx.problem(key, "unknown section" + (
                did_you_mean(key, SECTIONS) or f"; valid sections: {', '.join(SECTIONS)}"))
        elif key in ("daemon", "sla") and not isinstance(value, dict):
            ctx.problem(key, f"must be a table ([{key}]), got {show(value)}")
        elif key not in ("daemon", "sla") and not (
            isinstance(value, list) and all(isinstance(v, dict) for v in value)
        ):
            ctx.problem(key, f"must be an array of tables ([[{key}]]), got {show(value)}")
    tables: dict[str, list[dict[str, Any]]] = {
        k: data[k] if _is_tables(data.get(k)) else [] for k in REQUIRED
    }
    known = {k: _names_of(tables[k]) for k in REQUIRED}
    daemon = _daemon(ctx, data.get("daemon"))
    registries = [_registry(ctx, w, t) for w, t in _each(tables, "registry")]
    schedules = [_schedule(ctx, w, t, known["registry"]) for w, t in _each(tables, "schedule")]
    receivers = [_receiver(ctx, w, t) for w, t in _each(tables, "receiver")]
    routes = [_route(ctx, w, t, known) for w, t in _each(tables, "route")]
    ignores = [_ignore(ctx, w, t, known["registry"]) for w, t in _each(tables, "ignore")]
    sla = _sla(ctx, data.get("sla"))
    feeds = [_feed(ctx, w, t) for w, t in _each(tables, "feed")]
    vex = [_vex(ctx, w, t) for w, t in _each(tables, "vex")]
    for section in ("registry", "schedule", "receiver", "route", "feed", "vex"):
        _check_unique(ctx, section, tables[section])
    _pulls_read(ctx, registries, schedules)
    if not registries and "registry" not in data:
        ctx.warn("registry", "no [[registry]] table: there is nothing to scan")
    if ctx.problems:
        return ct.Config()
    return ct.Config(
        daemon=daemon,
        registries=tuple(r for r in registries if r is not None),
        schedules=tuple(s for s in schedules if s is not None),
        receivers=tuple(r for r in receivers if r is not None),
        routes=tuple(r for r in routes if r is not None),
        ignores=tuple(i for i in ignores if i is not None),
        sla=sla,
        feeds=tuple(f for f in feeds if f is not None),
        vex=tuple(v for v in vex if v is not None),
        source=source,
        warnings=tuple(ctx.warnings),
    )


def _pulls_read(ctx: Ctx, registries: list[ct.RegistryConfig | None],
                schedules: list[ct.ScheduleConfig | None]) -> None:
    """A schedule that selects by pull time over registries whose manifests lineage reads:
    Harbor counts each such read as a pull (``daemon/lineage/fetch.py``)."""
    reading = {r.name for r in registries if r is not None and r.read_manifests}
    for schedule in schedules:
        if schedule is None or schedule.only_pulled_within is None:
            continue
        named = [n for n in schedule.registries if n in reading]
        if named:
            ctx.warn(f"schedule[{schedule.name}].only_pulled_within",
                     f"lineage reads each scanned image's manifest on {', '.join(named)}, and "
                     "Harbor counts that as a pull: every image scanwatch has read looks "
                     "pulled; set read_manifests = false there")


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _each(
    tables: dict[str, list[dict[str, Any]]], section: str
) -> list[tuple[str, dict[str, Any]]]:
    """Each table of a section with its TOML path: by name where it has one, else by position."""
    label = _label if section != "ignore" else (lambda _t, i: str(i))  # ignores have no name
    return [(f"{section}[{label(t, i)}]", t) for i, t in enumerate(tables[section], start=1)]


def _label(table: dict[str, Any], position: int) -> str:
    value = table.get("name")
    return value if isinstance(value, str) and value.strip() else str(position)


def _names_of(tables: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(t["name"] for t in tables if isinstance(t.get("name"), str))


def _check_unique(ctx: Ctx, section: str, tables: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for position, table in enumerate(tables, start=1):
        value = table.get("name")
        if not isinstance(value, str) or not value:
            continue
        if value in seen:
            ctx.problem(f"{section}[{value}].name", f"duplicate name {show(value)}: used by "
                        f"{section} #{seen[value]} and #{position}; names must be unique")
        else:
            seen[value] = position


def _fields(
    ctx: Ctx, where: str, table: dict[str, Any], keys: dict[str, Parser], section: str
) -> dict[str, Any]:
    """Parse the known keys of one table; report unknown and missing required keys."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in keys:
            ctx.problem(f"{where}.{key}", "unknown key" + (
                did_you_mean(key, keys) or f"; valid keys: {', '.join(keys)}"))
            continue
        parser = keys[key]
        if parser is None:
            continue
        parsed = parser(ctx, f"{where}.{key}", value)
        if parsed is not BAD:
            out[key] = parsed
    for key in REQUIRED.get(section, ()):
        if key not in table:
            ctx.problem(f"{where}.{key}", f"required: {HINTS[key]}")
    return out


def _daemon(ctx: Ctx, table: Any) -> ct.DaemonConfig:
    if not isinstance(table, dict):
        return ct.DaemonConfig(database=default_database(ctx.environ))
    values = _fields(ctx, "daemon", table, DAEMON_KEYS, "daemon")
    database = values.get("database") or default_database(ctx.environ)
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", database):
        ctx.problem("daemon.database", 'must be an SQLAlchemy URL such as '
                    f'"sqlite:////var/lib/scanwatch/history.db", got {show(database)}')
    elif re.search(r"://[^/@]*:[^/@]*@", database):
        ctx.warn("daemon.database", "a literal password in the file; prefer a password-less URL "
                 "(peer auth, ~/.pgpass or PGPASSFILE)")
    values["database"] = database
    _web_access(ctx, values)
    return ct.DaemonConfig(**values)


def _web_access(ctx: Ctx, values: dict[str, Any]) -> None:
    """Pages on a listener others can reach need a users file (daemon/web/auth.py)."""
    from daemon.web.auth import is_loopback

    users = values.get("web_users_file", "")
    if users:
        values["web_users_file"] = users = str(ctx.base / users)
        if not Path(users).is_file():
            ctx.missing("daemon.web_users_file", f"no such file: {show(users)}")
    listen_at = values.get("listen", "")
    if listen_at and not users and not is_loopback(listen_at):
        ctx.problem("daemon.listen", f"{show(listen_at)} is reachable from other hosts: set "
                    "web_users_file (`scanwatch web add-user`) so that the pages ask for a "
                    "password, or listen on 127.0.0.1")


def _registry(ctx: Ctx, where: str, table: dict[str, Any]) -> ct.RegistryConfig | None:
    values = _fields(ctx, where, table, REGISTRY_KEYS, "registry")
    password = secret_pair(ctx, where, table, "password")
    if values.get("ca_bundle"):
        bundle = ctx.base / values["ca_bundle"]
        if not bundle.is_file():
            ctx.missing(f"{where}.ca_bundle", f"no such file: {show(str(bundle), limit=300)}")
    hook: ct.Secret | None = None
    hook_given = "webhook_secret" in table or "webhook_secret_file" in table
    if hook_given:
        hook = secret_pair(ctx, where, table, "webhook_secret")
    if password is None or not all(k in values for k in REQUIRED["registry"]) or (
            hook_given and hook is None):
        return None
    return ct.RegistryConfig(**{**values, "password": password, "webhook_secret": hook})


def _schedule(
    ctx: Ctx, where: str, table: dict[str, Any], registries: tuple[str, ...]
) -> ct.ScheduleConfig | None:
    values = _fields(ctx, where, table, SCHEDULE_KEYS, "schedule")
    _check_refs(ctx, f"{where}.registries", values.get("registries", ()), registries, "registry",
                required=True)
    if not all(k in values for k in REQUIRED["schedule"]):
        return None
    return ct.ScheduleConfig(**values)


def _receiver(ctx: Ctx, where: str, table: dict[str, Any]) -> ct.ReceiverConfig | None:
    values = _fields(ctx, where, table, RECEIVER_KEYS, "receiver")
    urls = receiver_urls(ctx, where, table)
    if urls is None or "name" not in values:
        return None
    return ct.ReceiverConfig(**{**values, "urls": urls})


def _route(
    ctx: Ctx, where: str, table: dict[str, Any], known: dict[str, tuple[str, ...]]
) -> ct.RouteConfig | None:
    values = _fields(ctx, where, table, ROUTE_KEYS, "route")
    _check_refs(ctx, f"{where}.receivers", values.get("receivers", ()), known["receiver"],
                "receiver", required=True)
    _check_refs(ctx, f"{where}.escalate_to", values.get("escalate_to", ()), known["receiver"],
                "receiver")
    _check_refs(ctx, f"{where}.registries", values.get("registries", ()), known["registry"],
                "registry", globs_ok=True)
    if "continue" in values:
        values["continue_"] = values.pop("continue")
    if "receivers" not in values:
        return None
    return ct.RouteConfig(**values)


def _ignore(
    ctx: Ctx, where: str, table: dict[str, Any], registries: tuple[str, ...]
) -> ct.IgnoreConfig | None:
    values = _fields(ctx, where, table, IGNORE_KEYS, "ignore")
    _check_refs(ctx, f"{where}.registries", values.get("registries", ()), registries, "registry",
                globs_ok=True)
    if "reason" in values and not values["reason"].strip():
        ctx.problem(f"{where}.reason", "must not be empty: say why the finding is accepted")
    expires = values.get("expires")
    if isinstance(expires, date) and expires < ctx.today:
        ctx.warn(f"{where}.expires", f"{expires.isoformat()} has passed: the rule no longer "
                 "applies")
    if not values.get("vulnerability") and not values.get("package"):
        ctx.warn(where, "neither vulnerability nor package: it silences every finding it matches")
    if not all(k in values for k in REQUIRED["ignore"]):
        return None
    return ct.IgnoreConfig(**values)


def _feed(ctx: Ctx, where: str, table: dict[str, Any]) -> ct.FeedConfig | None:
    values = _fields(ctx, where, table, FEED_KEYS, "feed")
    if "name" not in values:
        return None
    if values["name"] != "epss" and ({"epss_threshold", "epss_percentile"} & set(values)):
        ctx.problem(where, "epss_threshold and epss_percentile belong to the epss feed")
    values.setdefault("url", ct.KEV_URL if values["name"] == "kev" else ct.EPSS_URL)
    if not re.match(r"^https?://", values["url"]):
        values["url"] = str(ctx.base / values["url"])  # a local file, relative to the config
        if not Path(values["url"]).is_file():
            ctx.missing(f"{where}.url", "neither an http(s) URL nor an existing file: "
                        f"{show(values['url'], limit=300)}")
    return ct.FeedConfig(**values)


def _vex(ctx: Ctx, where: str, table: dict[str, Any]) -> ct.VexConfig | None:
    values = _fields(ctx, where, table, VEX_KEYS, "vex")
    if ("path" in values) == ("url" in values):
        ctx.problem(where, "needs exactly one of path (a file or directory) or url")
        return None
    if "path" in values:
        values["path"] = str(ctx.base / values["path"])
    if "path" in values and not Path(values["path"]).exists():
        ctx.missing(f"{where}.path",
                    f"no such file or directory: {show(values['path'], limit=300)}")
    if "name" not in values:
        return None
    return ct.VexConfig(**values)


def _sla(ctx: Ctx, table: Any) -> ct.SlaConfig:
    if not isinstance(table, dict):
        return ct.SlaConfig()
    deadlines: dict[Severity, timedelta] = {}
    due_soon = ct.SlaConfig().due_soon
    kev_due_date = False
    for key, value in table.items():
        where = f"sla.{key}"
        if key == "kev_due_date":
            parsed_flag = bool_(ctx, where, value)
            kev_due_date = parsed_flag if parsed_flag is not BAD else False
            continue
        if key == "due_soon":
            parsed = duration(zero=True)(ctx, where, value)
            due_soon = parsed if parsed is not BAD else due_soon
            continue
        level = Severity.from_name(key) if isinstance(key, str) else None
        if level is None:
            ctx.problem(where, "unknown key" + (
                did_you_mean(key, SLA_KEYS) or f"; valid keys: {', '.join(SLA_KEYS)}"))
            continue
        parsed = duration()(ctx, where, value)
        if parsed is not BAD:
            deadlines[level] = parsed
    return ct.SlaConfig(deadlines=deadlines, due_soon=due_soon, kev_due_date=kev_due_date)


def _check_refs(
    ctx: Ctx,
    where: str,
    given: tuple[str, ...],
    known: tuple[str, ...],
    kind: str,
    *,
    required: bool = False,
    globs_ok: bool = False,
) -> None:
    if required and given == ():
        ctx.problem(where, f"must name at least one {kind}")
    for value in given:
        if globs_ok and any(c in value for c in "*?["):
            continue
        if value not in known:
            listing = ", ".join(dict.fromkeys(known)) or f"no [[{kind}]] is defined"
            ctx.problem(where, f"unknown {kind} {show(value)}" + (
                did_you_mean(value, known) or f"; known: {listing}"))


def next_run(schedule_cron: str, tz: str, now: datetime) -> datetime:
    """The next fire time of a cron expression in a time zone (cronsim: DST-correct)."""
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    zone = ZoneInfo(tz)
    return next(CronSim(schedule_cron, now.astimezone(zone)))
