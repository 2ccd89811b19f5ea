"""Request/response plumbing shared by the Harbor handlers: auth, paging, ``q``, booleans."""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote, urlencode

from daemon.sim.auth import Principal, Robot
from daemon.sim.inventory import Project
from daemon.sim.state import SimState

T = TypeVar("T")
TRUE = ("1", "t", "T", "TRUE", "true", "True")
FALSE = ("0", "f", "F", "FALSE", "false", "False")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, dumps(value))


def error_response(status: int, code: str, message: str) -> Response:
    return Response(status, dumps({"errors": [{"code": code, "message": message}]}))


class Request:
    def __init__(self, state: SimState, method: str, path: str, params: dict[str, str],
                 query: dict[str, str], raw_query: str, headers: Any, body: bytes,
                 raw_path: str = "") -> None:
        self.state, self.method, self.path, self.params = state, method, path, params
        self.raw_path = raw_path or path  # as sent: Harbor's Link keeps its encoding
        self.query, self.raw_query, self.headers, self.body = query, raw_query, headers, body
        self.principal: Principal = state.auth.principal(headers.get("Authorization"),
                                                         state.inventory.projects)

    def has_sid_cookie(self) -> bool:
        cookie = self.headers.get("Cookie") or ""
        return any(part.strip().startswith("sid=") for part in cookie.split(";"))

    # ---- auth (base.go: RequireAuthenticated, RequireSystemAccess, RequireProjectAccess) -------
    def require_auth(self) -> Principal:
        """401 for an anonymous caller, which is what a failed login makes of a request."""
        if self.principal is None:
            raise ApiError(401, "UNAUTHORIZED", "unauthorized")
        return self.principal

    def require_admin(self) -> None:
        if self.require_auth() != "admin":
            raise ApiError(403, "FORBIDDEN", "forbidden")

    def can_read(self, project: Project) -> bool:
        """Public projects are readable by anyone; a robot reads its own project too."""
        if self.principal == "admin" or project.public:
            return True
        return isinstance(self.principal, Robot) and self.principal.project == project.name

    def project(self, key: str = "project_name_or_id", *, by_name: bool = False) -> Project:
        """The project in the path, readable by the caller: else 401 anonymous, 403 a robot
        (a project that does not exist too: Harbor checks access before it looks), 404 admin."""
        value = self.params.get(key) or self.params["project_name"]
        by_id = (not by_name and value.isdigit()
                 and (self.headers.get("X-Is-Resource-Name") or "").lower() != "true")
        found = self.state.inventory.project(value, by_id=by_id)
        if found is not None and self.can_read(found):
            return found
        self.require_auth()
        if self.principal != "admin":
            raise ApiError(403, "FORBIDDEN", "forbidden")
        raise ApiError(404, "NOT_FOUND", f"project {value} not found")

    # ---- query parameters ----------------------------------------------------------------------
    def flag(self, name: str, default: bool) -> bool:
        value = self.query.get(name)
        if value is None or value == "":
            return default
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise ApiError(422, "UNPROCESSABLE_ENTITY",
                       f"validation failure list:\n{name} in query must be of type boolean: "
                       f"\"{value}\"")

    def _int(self, name: str, default: int) -> int:
        value = self.query.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", f"validation failure list:\n{name} in "
                           f"query must be of type int64: \"{value}\"") from None

    def paginate(self, items: Sequence[T]) -> tuple[Sequence[T], list[tuple[str, str]]]:
        page, size = self._int("page", 1), self._int("page_size", 10)
        if size > 100:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "validation failure list:\n"
                           "page_size in query should be less than or equal to 100")
        if page < 1 or size < 0:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "validation failure list:\n"
                           "page in query should be greater than or equal to 1")
        size = size or 10
        total = len(items)
        chosen = items[(page - 1) * size: page * size]
        headers = [("X-Total-Count", str(total))]
        links = []
        if page > 1 and (page - 1) * size < total:
            links.append(self._link(page - 1, size, "prev"))
        if page * size < total:
            links.append(self._link(page + 1, size, "next"))
        if links:
            headers.append(("Link", " , ".join(links)))
        return chosen, headers

    def _link(self, page: int, size: int, rel: str) -> str:
        values = {**self.query, "page": str(page), "page_size": str(size)}
        # Harbor writes the query URL-unescaped (API-NOTES §3): a q with & or + comes back broken.
        # The path is the request's as sent (Go's URL.String() keeps RawPath), so a nested
        # repository stays encoded twice (team%252Fapp) and the link can be followed.
        query = unquote(urlencode(sorted(values.items())))
        return f'<{self.raw_path}?{query}>; rel="{rel}"'

    def q(self) -> list[tuple[str, str, Any]]:
        return parse_q(self.query.get("q", ""))


def _typed(value: str) -> Any:
    text = value.strip().strip('"').strip("'")
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        pass
    try:
        return int(text)
    except ValueError:
        return text


def parse_q(text: str) -> list[tuple[str, str, Any]]:
    """Harbor's ``q``: ``k=v``, ``k=~v``, ``k=[min~max]``, ``k={a b}``, ``k=(a b)``."""
    terms: list[tuple[str, str, Any]] = []
    if not text.strip():
        return terms
    for term in text.split(","):
        key, sep, value = term.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ApiError(400, "BAD_REQUEST", f"invalid query: {text}")
        if value.startswith("\\"):
            terms.append((key, "exact", value[1:]))
        elif value.startswith("~"):
            terms.append((key, "fuzzy", value[1:]))
        elif value.startswith("[") or value.endswith("]"):
            if not (value.startswith("[") and value.endswith("]")) or "~" not in value:
                raise ApiError(400, "BAD_REQUEST", f"invalid query: bad range {value}")
            low, _, high = value[1:-1].partition("~")
            terms.append((key, "range", (_typed(low) if low else None,
                                         _typed(high) if high else None)))
        elif value.startswith("{") or value.startswith("("):
            close = "}" if value.startswith("{") else ")"
            if not value.endswith(close):
                raise ApiError(400, "BAD_REQUEST", f"invalid query: bad list {value}")
            words = [_typed(w) for w in value[1:-1].split()]
            terms.append((key, "or" if close == "}" else "and", words))
        else:
            terms.append((key, "exact", _typed(value)))
    return terms


def matches(op: str, want: Any, have: Any | Sequence[Any],
            compare: Callable[[Any], Any] = lambda v: v) -> bool:
    values = list(have) if isinstance(have, (list, tuple)) else [have]
    if op == "exact":
        return any(str(compare(v)) == str(want) for v in values)
    if op == "fuzzy":
        return any(str(want) in str(compare(v)) for v in values)
    if op == "or":
        return any(str(compare(v)) in {str(w) for w in want} for v in values)
    if op == "and":
        return all(any(str(compare(v)) == str(w) for v in values) for w in want)
    low, high = want
    return any((low is None or compare(v) >= low) and (high is None or compare(v) <= high)
               for v in values)
