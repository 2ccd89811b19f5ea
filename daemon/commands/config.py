"""`scanwatch config check` and `scanwatch config init PATH`.

Standard library only at module level; the loader and tomli-w are imported by the handlers.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon import config_types as ct
from daemon.commands._common import add_format, config_path, print_json
from daemon.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from daemon.config_types import Config


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    group = subparsers.add_parser(
        "config",
        parents=[common],
        help="check the configuration file, or write a starter one",
        description="Check the configuration file, or write a commented starter one.",
    )
    group.set_defaults(group_parser=group)
    sub = group.add_subparsers(title="subcommands", metavar="SUBCOMMAND")

    check = sub.add_parser(
        "check",
        parents=[common],
        help="validate the configuration and summarise it",
        description=(
            "Read the configuration (--config PATH, else $SCANWATCH_CONFIG, else "
            "/etc/scanwatch/config.toml), list every problem with its TOML path and exit 2, or "
            "print 'ok' and a summary (with each schedule's next run) and exit 0. Warnings go to "
            "stderr. Secrets from ${ENV} or *_file that are missing here are warnings, since the "
            "service's environment may differ; --strict makes them errors, as `run` does."
        ),
    )
    add_format(check)
    check.add_argument(
        "--strict",
        action="store_true",
        help="treat an unset ${ENV} variable or an unreadable secret file as an error",
    )
    check.set_defaults(handler=check_command)

    init = sub.add_parser(
        "init",
        parents=[common],
        help="write a commented starter configuration to PATH",
        description=(
            "Write a commented starter configuration to PATH (never over an existing file). "
            "Edit it, then run `scanwatch --config PATH config check`."
        ),
    )
    init.add_argument("path", metavar="PATH", help="where to write the file (must not exist)")
    init.set_defaults(handler=init_command)


def check_command(args: argparse.Namespace) -> int:
    from daemon.config import analyse

    path = config_path(args)
    outcome = analyse(path, strict=args.strict)
    added = 0
    if outcome.config is not None:
        from daemon.alerts.route import unmatched_routes
        from daemon.doctor import check_database

        # A route that can never match is legal TOML but a mistake worth saying out loud.
        outcome.warnings.extend(unmatched_routes(outcome.config))
        # The database the daemon will use must be usable: say so now, with the path.
        for problem in check_database(outcome.config.daemon.database):
            if not problem.ok:
                outcome.problems.append(f"daemon.database: {problem.detail}")
        added = ignores_added(outcome.config.daemon.database)
        outcome.warnings.extend(falling_behind(outcome.config))
        if outcome.problems:
            outcome.config = None
    if args.format == "json":
        body: dict[str, Any] = {"ok": outcome.config is not None, "path": str(path)}
        body.update({**summary_data(outcome.config), "ignores_added": added}
                    if outcome.config else {})
        print_json({**body, "problems": outcome.problems, "warnings": outcome.warnings})
        return 0 if outcome.config is not None else 2
    for line in outcome.warnings:
        print(f"scanwatch: warning: {line}", file=sys.stderr)
    if outcome.config is None:
        raise ConfigError(outcome.problems, str(path))
    print("ok")
    print(summary_text(outcome.config, str(path), added))
    if outcome.config.routes:
        from daemon.alerts.route import routing_tree

        print("Routing (first match wins unless continue):")
        print("\n".join(f"  {line}" for line in routing_tree(outcome.config)))
    return 0


def init_command(args: argparse.Namespace) -> int:
    path = Path(args.path)
    text = starter_text()
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise UsageError(f"{path}: already exists; not overwriting it (choose another path "
                         "or remove it first)") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    print(f"wrote {path}; edit it, then run: scanwatch --config {path} config check")
    return 0


# --- the summary ------------------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def _next_runs(config: Config) -> dict[str, str]:
    from daemon.config import next_run

    now = datetime.now(UTC)
    return {
        s.name: next_run(s.cron, s.timezone, now).strftime("%Y-%m-%d %H:%M %Z")
        for s in config.schedules
    }


def summary_data(config: Config) -> dict[str, Any]:
    """What `config check --format json` prints besides ok/problems/warnings. No secrets."""
    from daemon.config_checks import format_duration

    runs = _next_runs(config)
    return {
        "database": _hide_password(config.daemon.database),
        "listen": config.daemon.listen,
        "registries": [{"name": r.name, "url": r.url, "username": r.username,
                        "password": r.password.source} for r in config.registries],
        "schedules": [{"name": s.name, "cron": s.cron, "timezone": s.timezone,
                       "registries": list(s.registries), "next_run": runs[s.name]}
                      for s in config.schedules],
        "receivers": [{"name": r.name, "urls": len(r.urls),
                       "schemes": [u.reveal().split("://")[0] for u in r.urls if u.present]}
                      for r in config.receivers],
        "routes": [{"name": r.name, "receivers": list(r.receivers),
                    "min_severity": r.min_severity.label, "group": r.group}
                   for r in config.routes],
        "ignores": len(config.ignores),
        "sla": {s.label: format_duration(d) for s, d in config.sla.deadlines.items()},
    }


def falling_behind(config: Config) -> list[str]:
    """The registries whose last run found the rescans falling behind the scanner's DB (the
    numbers as that run measured them)."""
    from daemon.doctor import check_coverage

    return [f"{c.subject}: {c.detail}" for c in check_coverage(config, config.daemon.database)
            if c.warn]


def ignores_added(url: str) -> int:
    """How many ignore rules `scanwatch ignore add` keeps in the SQLite database at ``url``
    (read only; 0 where there is no such file or table yet)."""
    import sqlite3

    from daemon.store.base import sqlite_path

    path = sqlite_path(url)
    if path is None or not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM ignore_rule").fetchone()[0])
    except sqlite3.Error:
        return 0


def summary_text(config: Config, path: str, ignores_added: int = 0) -> str:
    """One paragraph: what the daemon would do with this file."""
    from daemon.config_checks import format_duration

    runs = _next_runs(config)
    parts = [
        _plural(len(config.registries), "registry").replace("registrys", "registries")
        + (" (" + ", ".join(f"{r.name} at {r.url}" for r in config.registries) + ")"
           if config.registries else ""),
        _plural(len(config.schedules), "schedule")
        + (" (" + ", ".join(f'{s.name} "{s.cron}" {s.timezone} on {", ".join(s.registries)}, '
                            f"next run {runs[s.name]}" for s in config.schedules) + ")"
           if config.schedules else ""),
        _plural(len(config.receivers), "receiver")
        + (" (" + ", ".join(f"{r.name}: {_plural(len(r.urls), 'URL')}" for r in config.receivers)
           + ")" if config.receivers else ""),
        _plural(len(config.routes), "route")
        + (" (" + ", ".join(f"{r.min_severity.label}+ {r.group} → {', '.join(r.receivers)}"
                            for r in config.routes) + ")" if config.routes else ""),
        _plural(len(config.ignores), "ignore rule")
        + (f" (+ {ignores_added} added with `scanwatch ignore`)" if ignores_added else ""),
    ]
    sla = ", ".join(f"{s.label} {format_duration(d)}" for s, d in config.sla.deadlines.items())
    return (
        f"{path}: " + "; ".join(parts) + f"; SLA {sla or 'none'}"
        + f"; history in {_hide_password(config.daemon.database)}"
        + f"; HTTP listener {config.daemon.listen or 'off'}."
    )


# --- the starter file -------------------------------------------------------------------------

# (key, value, comment, active): inactive keys are written commented out with their default.
_STARTER: tuple[tuple[str, str, tuple[tuple[str, Any, str, bool], ...]], ...] = (
    ("[daemon]", "How the daemon itself runs. Every key here is optional.", (
        ("database", "sqlite:////var/lib/scanwatch/history.db",
         "An SQLAlchemy URL. Default: $STATE_DIRECTORY/history.db under systemd, "
         "else ~/.local/state/scanwatch/history.db ($XDG_STATE_HOME)", False),
        ("listen", "127.0.0.1:9468", 'Serve /metrics, /healthz, /readyz. Default "" (off).',
         False),
        ("stop_timeout", "30s", "How long SIGTERM waits for work to finish or checkpoint.",
         False),
    )),
    ("[[registry]]", "A Harbor registry to keep scanned. Repeat the table for more.", (
        ("name", "harbor", "A short name used in schedules, routes and the CLI.", True),
        ("url", "http://127.0.0.1:8080",
         "The Harbor URL (`scanwatch sim serve --port 8080` serves this one).", True),
        ("username", "admin", "A robot account with scan rights is best.", True),
        ("password", "${HARBOR_PASSWORD}",
         'From the environment; or password_file = "/run/credentials/scanwatch.service/harbor"',
         True),
        ("projects", ["*"], "Project globs to include.", False),
        ("exclude_projects", [], "Project globs to skip.", False),
        ("requests_per_second", 5.0, "API calls per second (token bucket).", False),
        ("burst", 5, "Calls allowed in a burst above the rate.", False),
        ("max_concurrent_requests", 4, "API calls in flight at once.", False),
        ("max_scans_in_flight", 2, "Scans this daemon keeps Pending or Running at once.", False),
    )),
    ("[[schedule]]", "When to walk which registries and what to (re)scan.", (
        ("name", "nightly", "", True),
        ("cron", "0 2 * * *", "Standard crontab: minute hour day month weekday (0 = Sunday).",
         True),
        ("timezone", "UTC", "An IANA time zone, e.g. Europe/Berlin.", True),
        ("registries", ["harbor"], "Registry names from [[registry]].", True),
        ("select", list(ct.DEFAULT_SELECT),
         "Lanes: changed, unscanned, failed, db_updated (a newer scanner DB: new CVEs), stale.",
         False),
        ("stale_after", "7d", "For the stale lane: rescan after this long.", False),
        ("max_scans", 1000, "Scans started per run at most (default: what the registry's "
         "limits allow until the next run).", False),
        ("jitter", "0s", "A random delay before each run.", False),
        ("on_missed", "run_once", "After downtime: run_once or skip.", False),
    )),
    ("[[receiver]]", "Where alerts go: apprise URLs (Slack, email, webhooks, ~100 more).", (
        ("name", "team-webhook", "", True),
        ("urls", ["json://127.0.0.1:9000/scanwatch"],
         'Tokens belong in the environment: "slack://${SLACK_TOKENS}/#security"', True),
        ("max_age", "1d", "Undelivered messages are dead-lettered after this long.", False),
    )),
    ("[[route]]", "Which changes go to which receivers, and how they are grouped.", (
        ("receivers", ["team-webhook"], "Receiver names from [[receiver]].", True),
        ("min_severity", "High", "Critical, High, Medium, Low, Unknown or None.", True),
        ("events", list(ct.DEFAULT_EVENTS),
         "Change kinds to send (this is the default when unset); the others: fixed, "
         "severity_down, scanner_unavailable, known_exploited, exploit_likely.", False),
        ("events", [*ct.DEFAULT_EVENTS, "known_exploited", "exploit_likely"],
         "Here with known_exploited (a CVE in your images entered CISA KEV) and "
         "exploit_likely (its EPSS score crossed epss_threshold).", True),
        ("group", "immediate", "immediate (after each run) or digest (on digest_cron).", False),
    )),
    ("[[feed]]", "CISA's Known Exploited Vulnerabilities catalog, fetched hourly (a "
     "conditional request: unchanged costs one 304).", (
        ("name", "kev", "kev or epss.", True),
        ("url", ct.KEV_URL, "Or a local file path.", True),
        ("cron", "17 * * * *", "When to fetch.", False),
        ("stale_after", "3d", "Say so in the next digest when the copy is older.", False),
    )),
    ("[[feed]]", "FIRST's EPSS scores (probability of exploitation), fetched daily.", (
        ("name", "epss", "", True),
        ("url", ct.EPSS_URL, "Or a local file path.", True),
        ("cron", "40 6 * * *", "When to fetch.", False),
        ("epss_threshold", 0.1, "exploit_likely when a score reaches it.", False),
    )),
    ("[sla]", "Days to fix, by severity: overdue findings are escalated.", (
        ("Critical", "7d", "", False),
        ("High", "30d", "", False),
    )),
)


def starter_text() -> str:
    """The commented starter written by `config init`; values are spelled by tomli-w."""
    import tomli_w

    lines = [
        "# scanwatch configuration: a starter written by `scanwatch config init`.",
        "# Every option, with its default, is in config.example.toml in the source tree.",
        "# Check it with: scanwatch --config THIS_FILE config check",
    ]
    for header, about, items in _STARTER:
        lines += ["", f"# {about}", header]
        for key, value, comment, active in items:
            if comment:
                lines.append(f"# {comment}")
            rendered = f"{key} = {_toml_value(tomli_w, value)}"
            lines.append(rendered if active else f"# {rendered}")
    return "\n".join(lines) + "\n"


def _toml_value(tomli_w: Any, value: Any) -> str:
    """One value as tomli-w spells it, arrays kept on one line (so they can be commented out)."""
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(tomli_w, v) for v in value) + "]"
    text: str = tomli_w.dumps({"v": value})
    return text.removeprefix("v = ").rstrip("\n")
