"""Who may read the pages: HTTP Basic users from a file of argon2 hashes (argon2-cffi).

The file (``[daemon] web_users_file``) holds one ``user:hash`` line per person, written by
``scanwatch web add-user``; blank lines and ``#`` comments are skipped. A listener on a
loopback address serves the pages without a password (only this host reaches it); any other
address needs the file, which ``config.load`` demands. The users file is read at start: a
change needs a restart (or SIGHUP, which re-reads the configuration).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from functools import cache
from pathlib import Path
from typing import Any

from daemon.errors import ConfigError


@cache
def _hasher() -> Any:
    """argon2-cffi's hasher with its defaults (argon2id), imported when first needed: the
    configuration check that imports ``is_loopback`` does not pay for it."""
    from argon2 import PasswordHasher

    return PasswordHasher()


def is_loopback(listen: str) -> bool:
    """Whether ``[daemon] listen`` (HOST:PORT) is reachable from this host only."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, "0.0.0.0" is an address: anything else may be reachable


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def load_users(path: str) -> dict[str, str]:
    """user → argon2 hash, from ``path``; a bad line is a ConfigError naming file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"daemon.web_users_file: cannot read {path}: {exc.strerror}"]
                          ) from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed.startswith("$argon2"):
            raise ConfigError([f"{path}:{number}: must be USER:ARGON2-HASH (from `scanwatch "
                               "web add-user`)"])
        users[user] = hashed
    return users


class BasicAuth:
    """Checks an ``Authorization: Basic`` header against the users (None: no password)."""

    def __init__(self, users: dict[str, str] | None) -> None:
        self.users = users

    @property
    def required(self) -> bool:
        return self.users is not None

    def allows(self, header: str) -> bool:
        if self.users is None:
            return True
        from argon2.exceptions import InvalidHashError, VerificationError

        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            _hasher().hash(password)  # the same work for an unknown user as for a wrong password
            return False
        try:
            return bool(_hasher().verify(hashed, password))
        except (VerificationError, InvalidHashError):
            return False
