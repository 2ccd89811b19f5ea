"""`scanwatch web add-user USER FILE`: a password for the pages, as an argon2 hash line."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from daemon.errors import UsageError

HELP = "manage who may read the web pages ([daemon] web_users_file)"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("web", parents=[common], help=HELP, description=HELP + ".")
    sub = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add-user", help="add or replace USER in FILE (the password is read from the terminal, "
        "or from stdin when it is not one)",
        description="Add or replace USER in FILE with an argon2 hash of the password. Point "
        "[daemon] web_users_file at FILE; the pages then ask for USER and the password.")
    add.add_argument("user")
    add.add_argument("file", type=Path)
    add.set_defaults(handler=add_user)


def add_user(args: argparse.Namespace) -> int:
    from daemon.web.auth import hash_password, load_users

    if not args.user or ":" in args.user:
        raise UsageError(f"web add-user: a user name without ':', got {args.user!r}")
    password = (getpass.getpass(f"password for {args.user}: ") if sys.stdin.isatty()
                else sys.stdin.readline().rstrip("\n"))
    if len(password) < 8:
        raise UsageError("web add-user: the password must have at least 8 characters")
    users = load_users(str(args.file)) if args.file.exists() else {}
    users[args.user] = hash_password(password)
    part = args.file.with_name(args.file.name + ".part")  # whole or not at all
    part.write_text("".join(f"{u}:{h}\n" for u, h in users.items()), encoding="utf-8")
    part.chmod(0o600)
    part.replace(args.file)
    print(f"{args.file}: {args.user} can read the pages")
    return 0
