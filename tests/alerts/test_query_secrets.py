"""A secret in a receiver URL's query string (the Azure Functions style ``?-code=${HOOK_CODE}``)
never reaches a log line, not even urllib3's and apprise's debug lines: the real
``scanwatch notify test`` in a subprocess at ``--log-level debug``, against a real hook server
on 127.0.0.1 that receives the code."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from alertkit import HookServer

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))
CODE = "Az-fn-code/9f8e7d6c5b4a+x=="  # characters a URL encodes, as Azure's codes have


def forms(secret: str) -> list[str]:
    """Every spelling a log line could give the secret."""
    return [secret, quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1],
            base64.b64encode(secret.encode()).decode()]


# json:// passes "-name" keys on as query parameters (apprise); the names are arbitrary.
@pytest.mark.parametrize("key", ["-code", "-sig"])
def test_a_query_secret_of_any_name_is_not_logged(tmp_path: Path, key: str) -> None:
    server = HookServer()
    try:
        config = tmp_path / "config.toml"
        config.write_text(f"""
[daemon]
database = "sqlite:///{tmp_path / 'h.db'}"

[[receiver]]
name = "azure"
urls = ["json://127.0.0.1:{server.port}/api/hook?{key}=${{HOOK_CODE}}"]
""")
        env = {**os.environ, "HOOK_CODE": quote(CODE, safe="")}
        result = subprocess.run([SCANWATCH, "notify", "test", "azure", "--log-level", "debug",
                                 "--config", str(config)],
                                capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        [(path, _)] = server.requests
        assert CODE in path or quote(CODE, safe="") in path  # the hook got its code
        assert "urllib3" in result.stderr  # the debug lines that used to show it are there
        output = result.stdout + result.stderr
        for spelling in forms(CODE):
            assert spelling not in output, spelling
    finally:
        server.close()
