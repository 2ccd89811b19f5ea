"""Who a request is, as Harbor's security middleware decides it.

Harbor never answers 401 for a failed Basic login by itself: each security generator that cannot
vouch for the request returns nothing and the request goes on *anonymous*
(``src/server/middleware/security/security.go``, ``basic_auth.go``, ``robot.go``). Endpoints then
decide: ``/systeminfo`` drops its protected fields, ``GET /projects`` lists public projects only,
a private project answers 401, and so do ``/scanners`` and ``/users/current``.

The generators run in Harbor's order:

1. robot (``robot.go``): a name with the ``robot$`` prefix, the right secret, not disabled and not
   expired (``expires_at`` of -1 never expires) is that robot; anything else falls through;
2. basic auth (``basic_auth.go`` → ``core/auth.Login``): a user name locked by a failure less
   than ``frozenTime`` (1.5 s) ago is refused at once, without checking the password; a wrong
   password (or a robot name that step 1 refused, which is no local user) locks the name and
   the request sleeps ``frozenTime`` before going on anonymous (``core/auth/authenticator.go``,
   ``lock.go``). The lock is not extended by attempts made while it holds, and a robot with its
   right secret is never locked out, since step 1 comes first.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from daemon.sim.inventory import Project

FROZEN_SECONDS = 1.5  # core/auth/authenticator.go: frozenTime
ROBOT_PREFIX = "robot$"


@dataclass(frozen=True)
class Robot:
    """A project robot's identity, as a request carries it."""

    name: str
    project: str


Principal = str | Robot | None  # "admin", a robot, or None: anonymous


def robot_name(project: Project) -> str:
    return f"{ROBOT_PREFIX}{project.name}+scanwatch"


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of a Basic ``Authorization`` header, as Go's ``req.BasicAuth()``."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class Authenticator:
    """The security generators over the simulator's projects (their robots) and admin."""

    def __init__(self, admin_password: str, wall: Callable[[], float],
                 frozen: float = FROZEN_SECONDS, sleep: Callable[[float], None] = time.sleep
                 ) -> None:
        self._admin_password = admin_password
        self._wall = wall
        self._frozen = frozen
        self._sleep = sleep
        self._lock = threading.Lock()
        self._failures: dict[str, float] = {}  # user name -> monotonic time of the last failure

    def principal(self, header: str | None, projects: list[Project]) -> Principal:
        credentials = basic_credentials(header)
        if credentials is None:
            return None
        user, password = credentials
        robot = self._robot(user, password, projects)
        if robot is not None:
            return robot
        return self._login(user, password)

    def _robot(self, user: str, password: str, projects: list[Project]) -> Robot | None:
        if not user.startswith(ROBOT_PREFIX):
            return None
        for project in projects:
            if robot_name(project) != user:
                continue
            expired = project.robot_expires_at != -1 and project.robot_expires_at <= self._wall()
            if password != project.robot_secret or project.robot_disabled or expired:
                return None
            return Robot(user, project.name)
        return None

    def _login(self, user: str, password: str) -> Principal:
        if self.locked(user):
            return None
        if user == "admin" and password == self._admin_password:
            return "admin"
        with self._lock:
            self._failures[user] = time.monotonic()
        self._sleep(self._frozen)
        return None

    def locked(self, user: str) -> bool:
        with self._lock:
            failed = self._failures.get(user)
        return failed is not None and time.monotonic() - failed <= self._frozen

    def locked_users(self) -> list[str]:
        with self._lock:
            names = list(self._failures)
        return sorted(n for n in names if self.locked(n))
