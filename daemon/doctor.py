"""`scanwatch doctor`: reach each registry, each receiver and the database, and say what is
wrong in words a user can act on (the checks; the command prints them). Receivers are reached
without sending anything (SMTP up to EHLO and the login, HTTP a HEAD of the host).

Each check is a ``Check(subject, name, ok, detail, warn)``: a warning (a robot that expires
soon, rescans falling behind the scanner's DB) is said but does not fail the doctor. Registry
checks never trigger a scan: the
scan permission is probed with a digest that cannot exist, which Harbor answers 404 when the
caller may scan and 403 when it may not (it checks access before it looks the artifact up).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from daemon.config_types import Config, ReceiverConfig, RegistryConfig
from daemon.errors import AuthFailed, CredentialsRejected, HarborError, NoScanner, NotFound

NO_SUCH_DIGEST = "sha256:" + "0" * 64
EXPIRY_WARNING = timedelta(days=14)  # a robot expiring sooner is warned about


@dataclass(frozen=True)
class Check:
    subject: str  # "registry prod-harbor", "database"
    name: str  # "reach", "credentials", "scanner", …
    ok: bool
    detail: str
    warn: bool = False  # ok, but worth acting on soon


def expiry_check(subject: str, username: str, robot: Any, now: datetime,
                 unreadable: str = "") -> Check:
    """The account's expiry in words (pure): ``robot`` is its ``RobotAccount`` (or ``None``
    with ``unreadable`` saying why it could not be read)."""
    if not username.startswith("robot$"):
        return Check(subject, "expiry", True, f"{username} is a user account, not a robot: "
                                              "it has no expiry")
    if robot is None:
        return Check(subject, "expiry", True, f"expiry not readable: {unreadable}")
    if robot.expires_at is None:
        return Check(subject, "expiry", True, f"{username} never expires")
    date = robot.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    left = robot.expires_at - now
    if left <= timedelta(0):
        return Check(subject, "expiry", False, f"{username} expired on {date}: refresh or "
                                               "extend it in Harbor")
    days = left.days
    when = f"in {days} day(s)" if days else f"in {left.total_seconds() / 3600:.0f} h"
    if left < EXPIRY_WARNING:
        return Check(subject, "expiry", True, f"{username} expires on {date} ({when}): extend "
                                              "it in Harbor (or create a new one) before then",
                     warn=True)
    return Check(subject, "expiry", True, f"{username} expires on {date} ({when})")


def transport_hint(registry: RegistryConfig, error: str) -> str:
    """The words for a connection failure (pure): plain HTTP, certificates, a closed port."""
    parts = urlsplit(registry.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    where = f"{parts.hostname}:{port}"
    if "WRONG_VERSION_NUMBER" in error or "record layer failure" in error:
        return f"the server at {where} speaks plain HTTP: use http:// in the registry's url"
    if "CERTIFICATE_VERIFY_FAILED" in error:
        return (f"the certificate of {where} is not trusted: set ca_bundle = \"/path/ca.pem\" "
                "for this registry (or verify_tls = false, only for a test set-up)")
    if "ConnectError" in error or "refused" in error.lower():
        return f"nothing answers at {where} (connection refused or host unreachable)"
    if "Timeout" in error:
        return f"{where} did not answer within the timeout"
    return error


async def check_registry(registry: RegistryConfig, now: datetime) -> list[Check]:
    from daemon.harbor.client import HarborClient
    from daemon.harbor.inventory import PROJECT_LISTING_SINCE

    subject = f"registry {registry.name}"
    checks: list[Check] = []
    once = dataclasses.replace(registry, max_retries=0)  # a doctor reports, it does not insist
    async with HarborClient(once) as client:
        try:
            system = await client.system_info()
        except CredentialsRejected as exc:
            return [Check(subject, "reach", True, f"{registry.url} answers"),
                    Check(subject, "credentials", False, str(exc))]
        except AuthFailed as exc:
            return [Check(subject, "credentials", False, str(exc))]
        except HarborError as exc:
            return [Check(subject, "reach", False, transport_hint(registry, str(exc)))]
        by_project = system.at_least(*PROJECT_LISTING_SINCE)
        checks.append(Check(subject, "reach", True,
                            f"Harbor {system.harbor_version}; listing "
                            + ("per project" if by_project else "per repository")))
        checks.append(Check(subject, "credentials", True, f"accepted for {registry.username}"))
        try:
            listed = await client.projects()
        except HarborError as exc:
            checks.append(Check(subject, "list", False, f"cannot list projects: {exc}"))
            return checks
        checks.append(await _robot_expiry(client, subject, listed, now))
        projects = [p.name for p in listed]
        if not projects:
            checks.append(Check(subject, "list", False,
                                f"{registry.username} sees no project: check its permissions"))
            return checks
        checks.append(Check(subject, "list", True, f"{len(projects)} project(s) visible"))
        checks.extend(await _project_checks(client, subject, projects[0], by_project))
    return checks


async def _robot_expiry(client: Any, subject: str, projects: list[Any],
                        now: datetime) -> Check:
    """Reads the robot's own record where Harbor lets it (robot:list at its level)."""
    user = client.registry.username
    if not user.startswith("robot$"):
        return expiry_check(subject, user, None, now)
    name = user.removeprefix("robot$")
    project_id = None
    if "+" in name:  # a project robot: robot$<project>+<name>
        project = name.split("+", 1)[0]
        project_id = next((p.project_id for p in projects if p.name == project), None)
        if project_id is None:
            return expiry_check(subject, user, None, now,
                                f"its project {project} is not visible to it")
    level = "its project" if project_id is not None else "the system"
    try:
        robot = await client.own_robot(project_id)
    except AuthFailed:
        return expiry_check(subject, user, None, now,
                            f"Harbor shows a robot its own record only with the robot list "
                            f"permission in {level}, which {user} has not (scanwatch does not "
                            "need it); see the robot's page in Harbor")
    except HarborError as exc:
        return expiry_check(subject, user, None, now, str(exc))
    if robot is None:
        return expiry_check(subject, user, None, now, f"Harbor does not list {user}")
    return expiry_check(subject, user, robot, now)


async def _project_checks(client: Any, subject: str, project: str,
                          by_project: bool) -> list[Check]:
    checks: list[Check] = []
    try:
        scanner = await client.project_scanner(project)
    except HarborError as exc:
        scanner, detail = None, f"cannot read the scanner of {project}: {exc}"
    else:
        detail = f"no scanner configured for project {project}"
    if scanner is None:
        checks.append(Check(subject, "scanner", False, detail))
    else:
        try:
            db_time = await client.scanner_db_updated_at(scanner.uuid)
            if db_time is None:  # answered, but not to this account (or without a time)
                checks.append(Check(
                    subject, "scanner", True,
                    f"{scanner.name} answers, but {client.registry.username} cannot read the "
                    "time of its vulnerability DB (Harbor's /scanners/{id}/metadata needs the "
                    "system-level scanner read permission): rescans after a DB update "
                    "(the db_updated lane) and the coverage cannot work without it",
                    warn=True))
            else:
                checks.append(Check(subject, "scanner", True,
                                    f"{scanner.name} answers; its vulnerability DB is of "
                                    f"{db_time.strftime('%Y-%m-%d %H:%M UTC')}"))
        except HarborError as exc:
            checks.append(Check(subject, "scanner", False,
                                f"scanner adapter {scanner.name} is down: {exc}"))
    try:
        if by_project:
            artifacts = await client.project_artifacts(project)
        else:
            artifacts = []
            for repo in (await client.repositories(project))[:1]:
                artifacts = await client.repository_artifacts(project, repo.name)
    except HarborError as exc:
        checks.append(Check(subject, "read", False, f"cannot list artifacts of {project}: {exc}"))
        return checks
    checks.append(Check(subject, "read", True, f"artifacts of {project} readable"))
    if not artifacts:
        return checks
    ref = artifacts[0].ref
    try:
        await client.trigger_scan(ref.project, ref.repository, NO_SUCH_DIGEST)
    except NotFound:
        checks.append(Check(subject, "scan", True, f"may scan in {project}"))
    except AuthFailed:
        checks.append(Check(subject, "scan", False,
                            f"{client.registry.username} may not scan in {project}: "
                            "grant it the scan permission"))
    except NoScanner as exc:
        checks.append(Check(subject, "scan", False, str(exc)))
    except HarborError as exc:
        checks.append(Check(subject, "scan", False, str(exc)))
    return checks


def check_database(url: str) -> list[Check]:
    """Writable, schema version, size; an SQLite file that does not exist yet is fine where
    it can be created (its nearest existing directory is writable). Reads only."""
    from daemon.store.base import sqlite_path

    path = sqlite_path(url)
    if path is None:
        return [Check("database", "open", True, "not an SQLite file: not checked further")]
    if not path.exists():
        parent = path.parent  # the directories are created too: the nearest existing decides
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return [Check("database", "open", True, f"{path} will be created on the first run")]
        why = "is not writable by this user" if parent.is_dir() else "is not a directory"
        return [Check("database", "open", False,
                      f"{path}: cannot create it ({parent} {why}); set [daemon] database to a "
                      "writable place")]
    if not os.access(path, os.W_OK):
        return [Check("database", "open", False, f"{path} is not writable by this user")]
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    except sqlite3.Error as exc:
        return [Check("database", "open", False, f"{path}: {exc}")]
    size = path.stat().st_size
    return [Check("database", "open", True,
                  f"{path}: schema version {row[0]}, {size / 1e6:.1f} MB")]


PROBE_TIMEOUT = 10.0  # seconds for one receiver's connection check


def check_receiver(receiver: ReceiverConfig, timeout: float = PROBE_TIMEOUT) -> list[Check]:
    """Each URL of ``receiver`` reached without sending anything: SMTP as far as EHLO (and
    STARTTLS and the login where the URL has them), HTTP as far as a HEAD of the host's "/".
    Details name host:port and the user, never a URL (URLs carry tokens)."""
    from daemon.alerts.transports.endpoint import endpoint

    subject = f"receiver {receiver.name}"
    checks: list[Check] = []
    for n, url in enumerate(receiver.urls, 1):
        name = f"url {n}" if len(receiver.urls) > 1 else "url"
        if not url.present:
            checks.append(Check(subject, name, False, "its secret is not set here"))
            continue
        target = endpoint(url.reveal())
        if target is None:
            checks.append(Check(subject, name, False, "not a URL apprise can send to"))
        elif target.kind == "smtp":
            checks.append(Check(subject, name, *_smtp_probe(target, timeout)))
        else:
            checks.append(Check(subject, name, *_http_probe(target, timeout)))
    return checks


def _smtp_probe(target: Any, timeout: float) -> tuple[bool, str]:
    import smtplib
    import ssl

    where = f"{target.host}:{target.port}"
    context = ssl.create_default_context()
    try:
        if target.tls == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout,
                                                    context=context)
        else:
            server = smtplib.SMTP(target.host, target.port, timeout=timeout)
        with server:
            server.ehlo()
            if target.tls == "starttls":
                server.starttls(context=context)
                server.ehlo()
            if target.user:
                server.login(target.user, target.password)
    except smtplib.SMTPAuthenticationError as exc:
        return False, (f"the SMTP server at {where} refused the login of {target.user} "
                       f"({exc.smtp_code}): check the user and password in the URL")
    except smtplib.SMTPNotSupportedError as exc:
        return False, f"the SMTP server at {where} does not offer {exc}"
    except smtplib.SMTPException as exc:
        return False, f"SMTP at {where}: {_one_line(exc)}"
    except ssl.SSLError as exc:
        return False, f"TLS with {where} failed: {exc.reason or _one_line(exc)}"
    except OSError as exc:
        return False, _socket_words(where, exc)
    login = f", login of {target.user} accepted" if target.user else ""
    tls = {"starttls": ", STARTTLS", "ssl": ", TLS"}.get(target.tls, "")
    return True, f"SMTP at {where} answers EHLO{tls}{login} (nothing sent)"


def _http_probe(target: Any, timeout: float) -> tuple[bool, str]:
    import http.client
    import ssl

    where = f"{target.host}:{target.port}"
    conn: http.client.HTTPConnection
    if target.tls == "https":
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=timeout,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    try:
        conn.request("HEAD", "/")
        status = conn.getresponse().status
    except ssl.SSLError as exc:
        return False, f"TLS with {where} failed: {exc.reason or _one_line(exc)}"
    except (OSError, http.client.HTTPException) as exc:
        return False, _socket_words(where, exc)
    finally:
        conn.close()
    scheme = "HTTPS" if target.tls else "HTTP"
    return True, f"{scheme} at {where} answers (HEAD / gave {status}; nothing sent)"


def _socket_words(where: str, exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing answers at {where} (connection refused)"
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer within {PROBE_TIMEOUT:g} s"
    if isinstance(exc, OSError) and exc.errno is None and "Name or service" in str(exc):
        return f"{where}: the host name does not resolve"
    return f"{where}: {_one_line(exc)}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_coverage(cfg: Config, database_url: str) -> list[Check]:
    """Per registry, the rescan trickle's coverage as its last whole-registry run measured it:
    a warning, with the numbers, where covering takes longer than the DB's update interval."""
    from daemon.scan.trickle import coverage_line
    from daemon.store.coverage import stored_coverage

    found = stored_coverage(database_url, [r.name for r in cfg.registries])
    checks = []
    for registry in cfg.registries:
        if registry.name not in found:
            continue
        finished, record = found[registry.name]
        when = f" (run of {finished.strftime('%Y-%m-%d %H:%M')})"
        behind = record.get("falling_behind")
        text = str(behind).removeprefix(f"registry {registry.name}: ") if behind \
            else coverage_line(record)
        checks.append(Check(f"registry {registry.name}", "coverage", True, text + when,
                            warn=bool(behind)))
    return checks


async def run_checks(cfg: Config, database_url: str, now: datetime) -> list[Check]:
    import asyncio

    checks: list[Check] = []
    for registry in cfg.registries:
        checks.extend(await check_registry(registry, now))
    for receiver in cfg.receivers:  # blocking sockets: in a thread, off the event loop
        checks.extend(await asyncio.to_thread(check_receiver, receiver))
    checks.extend(check_database(database_url))
    checks.extend(check_coverage(cfg, database_url))
    return checks
