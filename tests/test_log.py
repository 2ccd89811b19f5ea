"""Redaction: secrets planted in every place a log line can carry them never come out."""

from __future__ import annotations

import io
import json
import logging

import pytest

from daemon import log

SLACK = "https://hooks.slack.com/services/T0SECRET1/B0SECRET2/slacktokensecret3"
PLANTED = {
    "password": "hunter2-password",
    "token": "tok-9f8e7d6c5b4a",
    "userinfo": "pw-in-userinfo-77",
    "bearer": "bearer-abcdef123456",
    "basic": "YWRtaW46SGFyYm9yMTIzNDU=",
    "slack": "slacktokensecret3",
    "apprise": "discordtokensecret",
    "registered": "zz-registered-secret-zz",
    "query": "query-secret-value",
}


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [False, True], ids=["json", "console"])
def test_no_planted_secret_comes_out(tty: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = FakeStream(tty)
    log.configure("debug", stream=stream)
    log.register_secret(PLANTED["registered"])
    logger = log.get("test")
    # structlog events: by key, nested, in free text, in an exception
    logger.info("login", password=PLANTED["password"], user="admin")
    logger.info("request", headers={"Authorization": f"Bearer {PLANTED['bearer']}",
                                    "X-Api-Key": PLANTED["token"]})
    logger.info("calling", url=f"https://admin:{PLANTED['userinfo']}@harbor.example.com/api")
    logger.info("webhook", target=SLACK, extra=[f"token={PLANTED['query']}"])
    logger.info("free text mentions zz-registered-secret-zz inside a sentence")
    try:
        raise RuntimeError(f"failed with Basic {PLANTED['basic']}")
    except RuntimeError:
        logger.exception("boom")
    # stdlib loggers, as httpx and apprise write them
    logging.getLogger("httpx").info('HTTP Request: GET https://robot:%s@h/api "200 OK"',
                                    PLANTED["userinfo"])
    logging.getLogger("apprise").debug("Slack POST URL: %s (cert_verify=True)", SLACK)
    logging.getLogger("apprise").debug("Discord URL: discord://123456/%s", PLANTED["apprise"])
    logging.getLogger("apprise").debug("json://host/hook?token=%s", PLANTED["query"])
    out = stream.getvalue()
    assert out.count("\n") >= 10, out
    for name, secret in PLANTED.items():
        assert secret not in out, f"{name} leaked: {out}"
    if not tty:
        for line in out.splitlines():
            json.loads(line)  # every line stays valid JSON after redaction
    assert "admin" in out and "harbor.example.com" in out, "redaction keeps the rest"


def test_loading_a_config_registers_its_secrets(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from daemon import config

    path = tmp_path / "c.toml"
    path.write_text('''
[[registry]]
name = "r"
url = "https://h.example.com"
username = "u"
password = "${PW}"

[[receiver]]
name = "teams"
urls = ["wxteams://${WX}"]
''')
    monkeypatch.setenv("PW", "from-env-password-1")
    monkeypatch.setenv("WX", "WxTeamsTokenValue123")
    config.load(path)
    text = log.scrub("sent with from-env-password-1 and wxteams://WxTeamsTokenValue123 ok")
    assert "from-env-password-1" not in text and "WxTeamsTokenValue123" not in text
    assert text.startswith("sent with ") and text.endswith(" ok")


def test_structlog_comes_without_rich_and_rich_stays_importable() -> None:
    """structlog's import of rich (0.1 s of every command) is kept out; the console renderer
    still shows a traceback, and the progress display can still import rich."""
    import subprocess
    import sys

    script = (
        "import io, sys\n"
        "from daemon import log\n"
        "assert 'rich' not in sys.modules, 'structlog imported rich'\n"
        "out = io.StringIO()\n"
        "log.configure('info', stream=out)\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    log.get('t').error('boom', exc_info=True)\n"
        "assert 'ZeroDivisionError' in out.getvalue() and 'boom' in out.getvalue()\n"
        "import rich.progress\n"
        "print(rich.progress.Progress.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Progress"
