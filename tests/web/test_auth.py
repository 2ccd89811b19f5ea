"""Who may read the pages: loopback or not, the users file, Basic credentials (argon2)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.web.auth import BasicAuth, hash_password, is_loopback, load_users


@pytest.mark.parametrize(("listen", "loopback"), [
    ("127.0.0.1:9468", True), ("127.8.9.1:0", True), ("[::1]:9468", True),
    ("localhost:9468", True), ("0.0.0.0:9468", False), ("[::]:9468", False),
    ("10.0.0.5:9468", False), ("scanwatch.example.com:9468", False),
], ids=["v4", "v4-range", "v6", "localhost", "any-v4", "any-v6", "lan", "name"])
def test_it_tells_loopback_from_reachable_addresses(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_it_accepts_the_right_password_only(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(f"# people\n\nalice:{hash_password('s3cret pass')}\n")
    auth = BasicAuth(load_users(str(users)))
    assert auth.allows(basic("alice", "s3cret pass"))
    for header in (basic("alice", "wrong"), basic("bob", "s3cret pass"), "", "Bearer x",
                   "Basic !!!not-base64", "Basic " + base64.b64encode(b"\xff\xfe").decode()):
        assert not auth.allows(header), header
    assert BasicAuth(None).allows("")


def test_a_bad_users_line_names_file_and_line(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("alice:plaintext-password\n")
    with pytest.raises(ConfigError) as caught:
        load_users(str(users))
    assert f"{users}:1: must be USER:ARGON2-HASH" in str(caught.value)
    assert "plaintext-password" not in str(caught.value)
