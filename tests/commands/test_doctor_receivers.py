"""`scanwatch doctor` reaches each receiver without sending anything, as a subprocess: a real
SMTP server (aiosmtpd, with a login) up to EHLO and AUTH, a real HTTP endpoint up to a HEAD of
its host; a refused login, a closed port are one line naming host:port and the user, exit 1;
no secret of a receiver URL in the output; nothing is delivered."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from runkit import Cli, error_lines, write_config

from daemon.sim import SimOptions, Simulator, start_simulator

MAIL_PASSWORD = "Mail-Secret-93"
HOOK_CODE = "hook-code-7731"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    started = start_simulator(SimOptions(seed=3, projects=1, repositories_per_project=1,
                                         artifacts_per_repository=1, scan_seconds=0.1))
    yield started
    started.stop()


@pytest.fixture
def smtp_with_login() -> Iterator[tuple[list[object], int]]:
    """An SMTP server that accepts bob / MAIL_PASSWORD (AUTH without TLS, as on a test set-up)
    and keeps what it receives."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    received: list[object] = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
            received.append(envelope)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"bob", MAIL_PASSWORD.encode())
        return AuthResult(success=ok, handled=False)  # unhandled: the server answers 535

    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port,
                            authenticator=authenticator, auth_require_tls=False)
    controller.start()
    try:
        yield received, port
    finally:
        controller.stop()


@pytest.fixture
def http_endpoint() -> Iterator[tuple[list[str], int]]:
    """A real HTTP server that records each request's method and path."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET = do_POST = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def doctor(tmp_path: Path, sim: Simulator, urls: dict[str, str]) -> tuple[int, dict[str, dict[
        str, object]], str]:
    config = write_config(tmp_path, sim.url, "admin")
    receivers = "".join(f'\n[[receiver]]\nname = "{name}"\nurls = ["${{URL_{name.upper()}}}"]\n'
                        for name in urls)
    config.write_text(config.read_text() + receivers)
    cli = Cli(config, sim.admin[1])
    cli.env.update({f"URL_{name.upper()}": url for name, url in urls.items()})
    result = cli("doctor", "--format", "json")
    assert not error_lines(result), result.stderr
    checks = {c["subject"]: c for c in json.loads(result.stdout)["checks"]
              if c["subject"].startswith("receiver ")}
    text = cli("doctor").stdout
    return result.returncode, checks, result.stdout + text


def test_it_reaches_smtp_and_http_receivers_and_sends_nothing(
    sim: Simulator, tmp_path: Path, smtp_with_login: tuple[list[object], int],
    http_endpoint: tuple[list[str], int]
) -> None:
    received, smtp_port = smtp_with_login
    seen, http_port = http_endpoint
    code, checks, out = doctor(tmp_path, sim, {
        "mail": f"mailto://bob:{MAIL_PASSWORD}@example.org?smtp=127.0.0.1&port={smtp_port}"
                "&from=scanwatch@example.org&to=ops@example.org",
        "hook": f"json://127.0.0.1:{http_port}/api/hook?-code={HOOK_CODE}",
    })
    assert code == 0, out
    assert checks["receiver mail"]["ok"] and checks["receiver mail"]["detail"] == (
        f"SMTP at 127.0.0.1:{smtp_port} answers EHLO, login of bob accepted (nothing sent)")
    assert checks["receiver hook"]["detail"] == (
        f"HTTP at 127.0.0.1:{http_port} answers (HEAD / gave 404; nothing sent)")
    assert received == [] and seen == ["HEAD /", "HEAD /"]  # one per run of doctor
    assert MAIL_PASSWORD not in out and HOOK_CODE not in out


def test_a_refused_login_and_a_closed_port_are_said_with_host_and_port(
    sim: Simulator, tmp_path: Path, smtp_with_login: tuple[list[object], int]
) -> None:
    _, smtp_port = smtp_with_login
    closed = free_port()
    code, checks, out = doctor(tmp_path, sim, {
        "mail": f"mailto://bob:wrong-{MAIL_PASSWORD}@example.org?smtp=127.0.0.1&port={smtp_port}"
                "&to=ops@example.org",
        "hook": f"jsons://127.0.0.1:{closed}/hook?-code={HOOK_CODE}",
    })
    assert code == 1
    assert checks["receiver mail"]["detail"] == (
        f"the SMTP server at 127.0.0.1:{smtp_port} refused the login of bob (535): check the "
        "user and password in the URL")
    assert checks["receiver hook"]["detail"] == (
        f"nothing answers at 127.0.0.1:{closed} (connection refused)")
    assert f"FAIL  receiver hook: url: nothing answers at 127.0.0.1:{closed}" in out
    assert MAIL_PASSWORD not in out and HOOK_CODE not in out
