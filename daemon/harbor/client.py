"""A thin async client for Harbor's v2.0 API: the only module that imports httpx.

What it does for every call (API-NOTES §17): Basic auth, no cookies (sending ``sid`` back turns
on Harbor's CSRF check and every POST fails 403), ``X-Is-Resource-Name: true``, repository names
double-encoded, ``X-Accept-Vulnerabilities`` with both report types, ``page_size=100`` paging by
``X-Total-Count``, the registry's rate limiter in front of every attempt, and one retry loop:

- 429 and 503 wait for ``Retry-After`` (seconds or an HTTP date), else back off;
- other 5xx, transport errors (resets, timeouts, truncated bodies) and a 200 whose body is not
  JSON back off exponentially with full jitter, up to ``max_retries``;
- everything else fails at once with a typed error from ``daemon.errors``.

Error messages name the registry, the method and the path, never the credentials.

Every body is read as a stream into a buffer bounded by the registry's size limit for its kind
(``max_report_size`` for a vulnerability report or a scan log, ``max_response_size`` for the
rest): a larger body (a broken proxy, a hostile registry) is refused with one line naming the
URL and the limit, not retried, and never held in memory whole.

Harbor answers a failed login (wrong or expired secret, a user name locked for 1.5 s after a
failure) as an anonymous request, not with a 401: ``system_info`` is therefore the credentials
check, and every path that talks to Harbor calls it first (it is read once per client).
A listing that returns fewer items than its ``X-Total-Count`` promised is kept in
``short_listings`` for the caller to say so.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from daemon import __version__, log
from daemon.config_checks import format_size
from daemon.config_types import RegistryConfig
from daemon.errors import (
    AlreadyScanning,
    AuthFailed,
    BadResponse,
    CredentialsRejected,
    HarborError,
    NoScanner,
    NotFound,
    RateLimited,
    ServerError,
    Unsupported,
)
from daemon.harbor import inbound, packed, wire
from daemon.model import REPORT_MIME_HARBOR_V10, REPORT_MIME_V11, Artifact
from daemon.retry import parse_retry_after
from daemon.scan.ratelimit import RegistryLimiter

PAGE_SIZE = 100
ACCEPT_VULNERABILITIES = f"{REPORT_MIME_V11}, {REPORT_MIME_HARBOR_V10}"
RETRY_AFTER_CAP = 120.0
BACKOFF_CAP = 30.0
LOG_TAIL_BYTES = 4096
SCAN_BODY = {"scan_type": "vulnerability"}
_SPENT = httpx.ByteStream(b"")  # what a read response keeps as its stream (see _request)
MANIFEST_ACCEPT = {"Accept": ", ".join((
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"))}
RESPONSE = "max_response_size"  # the size limit of a page, a project, the system info…
REPORT = "max_report_size"  # …and of a vulnerability report or a scan log, which may be large

T = TypeVar("T")
_log = log.get(__name__)


class _NoCookies(DefaultCookiePolicy):
    """Accept no cookie and send none: Harbor's ``sid`` would switch CSRF checks on."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False


def encode_repository(project: str, repository: str) -> str:
    """``team/app`` (or ``proj/team/app``) → ``team%252Fapp``: Harbor decodes path names twice."""
    name = wire.strip_project(project, repository)
    return quote(quote(name, safe=""), safe="")


class HarborClient:
    """One registry's API. Use as ``async with HarborClient(cfg) as client:``."""

    def __init__(
        self,
        registry: RegistryConfig,
        *,
        limiter: RegistryLimiter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        backoff_base: float = 0.5,
    ) -> None:
        self.registry = registry
        self.name = registry.name
        self.limiter = limiter or RegistryLimiter.for_registry(registry)
        self.max_retries = max(0, registry.max_retries)
        self.calls = 0  # attempts sent, retries included
        self.short_listings: list[str] = []  # "GET path: got N of M" for each short listing
        self._system: wire.SystemInfo | None = None
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._backoff_base = backoff_base
        self._limits = {RESPONSE: registry.max_response_size, REPORT: registry.max_report_size}
        self._root = registry.url.rstrip("/")
        self._tokens: dict[str, tuple[str, float]] = {}  # repository → (token, monotonic expiry)
        self._token_locks: dict[str, asyncio.Lock] = {}
        self._challenge: wire.Challenge | None = None  # the realm a /v2 401 named
        timeout = registry.timeout.total_seconds()
        # Plain http never uses TLS: no CA bundle to load (36 ms per client).
        verify: ssl.SSLContext | bool = registry.verify_tls and registry.url.startswith("https:")
        if verify and registry.ca_bundle:
            verify = ssl.create_default_context(cafile=registry.ca_bundle)
        self._http = httpx.AsyncClient(
            base_url=registry.url.rstrip("/") + "/api/v2.0",
            auth=httpx.BasicAuth(registry.username, registry.password.reveal()),
            cookies=CookieJar(policy=_NoCookies()),
            headers={
                "X-Is-Resource-Name": "true",
                "X-Accept-Vulnerabilities": ACCEPT_VULNERABILITIES,
                "Accept": "application/json",
                "User-Agent": f"scanwatch/{__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=max(1, registry.max_concurrent_requests)),
            verify=verify,
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> HarborClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the one request loop ------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return self._rng.uniform(0, min(BACKOFF_CAP, self._backoff_base * 2**attempt))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        want: str = "json",
        before_send: Callable[[], None] | None = None,
        limit: str = RESPONSE,
        url: str = "",
        auth: httpx.Auth | None | str = "client",
        headers: Mapping[str, str] | None = None,
        challenge: bool = False,
    ) -> tuple[Any, httpx.Headers]:
        """Send with retries; return (parsed body, headers). ``want``: json, text or none;
        ``limit``: which size limit the body is held to (``RESPONSE`` or ``REPORT``).
        ``before_send`` runs right before each attempt goes out (after the rate limiter's
        wait); what it raises propagates and nothing is sent."""
        where = f"registry {self.name}: {method} {path}"
        attempt = 0
        while True:
            wait: float | None = None
            failure: HarborError
            try:
                async with self.limiter.slot():
                    if before_send is not None:
                        before_send()
                    self.calls += 1
                    extra: dict[str, Any] = {} if auth == "client" else {"auth": auth}
                    async with self._http.stream(method, url or path, params=params,
                                                 json=json_body, headers=headers,
                                                 **extra) as response:
                        # Read inside the slot: truncation raises here.
                        content = await self._read_bounded(response, limit)
                    # httpx's response and its stream hold each other: left so, a response
                    # that outlived two young collections waits, frozen, for the end of the
                    # run (scan/gcpolicy.py), hundreds of them through a large import.
                    response.stream = _SPENT
            except httpx.TransportError as exc:
                failure = ServerError(f"{where}: {type(exc).__name__}: {_short(exc)}")
            else:
                status = response.status_code
                if 200 <= status < 300:
                    try:
                        if limit == REPORT and want == "json":  # megabytes: off the loop
                            return (await inbound.off_loop(_decode, content, response, want),
                                    response.headers)
                        return _decode(content, response, want), response.headers
                    except ValueError:
                        failure = BadResponse(f"{where}: the body is not valid JSON", status)
                elif status in (429, 503):
                    wait = parse_retry_after(response.headers.get("Retry-After"))
                    kind = RateLimited if status == 429 else ServerError
                    failure = kind(f"{where}: {status} {_reason(response, content)}", status)
                elif status == 401 and challenge:
                    return None, response.headers  # the caller reads Www-Authenticate
                elif status >= 500:
                    failure = ServerError(f"{where}: {status} {_reason(response, content)}",
                                          status)
                else:
                    raise _typed(where, response, content)
            if attempt >= self.max_retries:
                raise failure
            if wait is not None:
                wait = min(wait, RETRY_AFTER_CAP)
                self.limiter.hold(wait)
            else:
                wait = self._backoff(attempt)
            _log.info("harbor_retry", registry=self.name, path=path, attempt=attempt + 1,
                      wait=round(wait, 3), error=str(failure))
            attempt += 1
            await self._sleep(wait)

    async def _get_all(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a list endpoint: page 1, then the rest (in parallel) by X-Total-Count."""
        return await self._get_pages(path, params, list)

    async def _get_pages(self, path: str, params: Mapping[str, Any] | None,
                         read: Callable[[list[Any]], list[T]]) -> list[T]:
        """``_get_all``, each page handed to ``read`` as it arrives: what the caller keeps of a
        page (an artifact listing's ``Artifact`` values), not every page's decoded JSON at
        once (about 2 KB an artifact, a whole project's while its pages came in)."""
        base = {**(params or {}), "page_size": PAGE_SIZE}

        async def page(number: int) -> tuple[list[T], int, Any]:
            body, headers = await self._request("GET", path, params={**base, "page": number})
            raw = list(_as_list(body, path))
            del body
            return read(raw), len(raw), headers

        items, count, headers = await page(1)
        total = _total(headers)
        if total is None:  # no count: walk until a short page
            number, last = 1, count
            while last == PAGE_SIZE:
                number += 1
                got, last, _ = await page(number)
                items.extend(got)
                count += last
            return items
        pages = -(-total // PAGE_SIZE)
        for got, size, _ in await asyncio.gather(*(page(p) for p in range(2, pages + 1))):
            items.extend(got)
            count += size
        if count < total:
            # A page came back short (a proxy, a changing listing, a server fault): whatever is
            # missing is not known to be deleted, and the caller must not take it as such.
            self.short_listings.append(f"GET {path}: {count} of {total}")
            _log.warning("listing_short", registry=self.name, path=path, got=count,
                         promised=total)
        return items

    async def _read_bounded(self, response: httpx.Response, limit: str) -> bytearray:
        """The body, or BadResponse as soon as it passes the limit (told or counted): the
        buffer never grows past the limit plus one chunk."""
        cap = self._limits[limit]
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise self._too_large(response, limit, cap)
        buffer = bytearray()
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) > cap:
                raise self._too_large(response, limit, cap)
        return buffer  # not copied into bytes: a report may be tens of MB

    def _too_large(self, response: httpx.Response, limit: str, cap: int) -> BadResponse:
        url = str(response.request.url)
        return BadResponse(f"registry {self.name}: {response.request.method} {url}: the "
                           f"response is larger than {limit} = {format_size(cap)}; refused",
                           response.status_code)

    # -- typed calls -----------------------------------------------------------------------

    async def system_info(self) -> wire.SystemInfo:
        """Harbor's version, read once per client; raises CredentialsRejected where Harbor
        took the credentials for none (it then hides its version, API-NOTES §1)."""
        if self._system is None:
            body, _ = await self._request("GET", "/systeminfo")
            info = wire.system_info(body)
            if not info.authenticated:
                raise CredentialsRejected(self.rejected_message(), 200)
            self._system = info
        return self._system

    def rejected_message(self) -> str:
        """One line naming the account and the likely cause, never the secret."""
        user = self.registry.username or "(no user name)"
        cause = ("wrong or expired secret?" if user.startswith("robot$")
                 else "wrong password, or locked for 1.5 s after a failed login?")
        return f"{self.name}: Harbor accepted no credentials for {user}: {cause}"

    async def projects(self) -> list[wire.Project]:
        return [wire.project(p) for p in await self._get_all("/projects")]

    async def project(self, project: str) -> wire.Project:
        body, _ = await self._request("GET", f"/projects/{quote(project, safe='')}")
        return wire.project(body)

    async def project_exists(self, project: str) -> bool:
        """``HEAD /projects?project_name=``: whether Harbor has the project, whoever may read it."""
        try:
            await self._request("HEAD", "/projects", params={"project_name": project},
                                want="none")
        except NotFound:
            return False
        return True

    async def own_robot(self, project_id: int | None) -> wire.RobotAccount | None:
        """The record of the robot this client logs in as (``GET /robots?q=name=…``: Harbor
        keeps the name without its ``robot$`` prefix); ``project_id`` for a project robot
        (``robot$<project>+<name>``), ``None`` for a system one. ``None`` when the listing
        does not show it; AuthFailed where the robot may not list robots (``robot:list``)."""
        stored = self.registry.username.removeprefix("robot$")
        terms = ([f"Level=project,ProjectID={project_id}"] if project_id is not None
                 else ["Level=system"]) + [f"name={stored}"]
        body, _ = await self._request("GET", "/robots", params={"q": ",".join(terms)})
        for item in _as_list(body, "robots"):
            robot = wire.robot_account(item)
            if robot.name == self.registry.username:
                return robot
        return None

    async def system_allowlist(self) -> wire.Allowlist:
        body, _ = await self._request("GET", "/system/CVEAllowlist")
        return wire.allowlist(body)

    async def project_scanner(self, project: str) -> wire.Scanner | None:
        body, _ = await self._request("GET", f"/projects/{quote(project, safe='')}/scanner")
        return wire.scanner(body)

    async def scanner_db_updated_at(self, uuid: str) -> datetime | None:
        """The scanner's vulnerability DB time; ``None`` when unknown or not ours to read."""
        try:
            body, _ = await self._request("GET", f"/scanners/{quote(uuid, safe='')}/metadata")
        except AuthFailed:
            return None  # a project robot has no system scanner:read: proceed without a DB time
        return wire.scanner_db_updated_at(body)

    async def repositories(self, project: str) -> list[wire.Repository]:
        items = await self._get_all(f"/projects/{quote(project, safe='')}/repositories")
        return [wire.repository(r, project) for r in items]

    async def repository(self, project: str, repository: str) -> wire.Repository:
        """One repository; NotFound when it does not exist. Its artifact listing cannot say
        that: Harbor lists a missing repository as empty (200 ``[]``), never 404."""
        body, _ = await self._request("GET", self._repo_path(project, repository))
        return wire.repository(body, project)

    def _artifact_params(self) -> dict[str, Any]:
        return {"with_scan_overview": "true", "with_tag": "true", "with_label": "false"}

    async def project_artifacts(self, project: str) -> list[Artifact]:
        """Every artifact of a project in one listing (Harbor ≥ v2.12)."""
        return await self._get_pages(f"/projects/{quote(project, safe='')}/artifacts",
                                     self._artifact_params(), self._reader(project))

    async def repository_artifacts(self, project: str, repository: str) -> list[Artifact]:
        path = self._repo_path(project, repository) + "/artifacts"
        return await self._get_pages(path, self._artifact_params(), self._reader(project))

    def _reader(self, project: str) -> Callable[[list[Any]], list[Artifact]]:
        """A listing page's artifacts, read as the page arrives: a page at a time, the loop
        free between pages (a project's 1,000 read at once held it 50–70 ms, bench/loop.py)."""
        return lambda items: [wire.artifact(a, self.name, project) for a in items]

    async def project_listing(self, project: str) -> list[packed.Page]:
        """``project_artifacts``, each page packed as it arrives (``harbor/packed.py``): what a
        walk holds of a listing while the other pages come in."""
        return await self._get_pages(f"/projects/{quote(project, safe='')}/artifacts",
                                     self._artifact_params(), self._packer(project))

    async def repository_listing(self, project: str, repository: str) -> list[packed.Page]:
        """``repository_artifacts``, each page packed as it arrives."""
        path = self._repo_path(project, repository) + "/artifacts"
        return await self._get_pages(path, self._artifact_params(), self._packer(project))

    def _packer(self, project: str) -> Callable[[list[Any]], list[packed.Page]]:
        read = self._reader(project)
        return lambda items: packed.pack(read(items))

    async def artifact(self, project: str, repository: str, reference: str) -> Artifact:
        path = f"{self._repo_path(project, repository)}/artifacts/{quote(reference, safe=':')}"
        body, _ = await self._request("GET", path, params=self._artifact_params())
        return wire.artifact(body, self.name, project)

    async def trigger_scan(self, project: str, repository: str, reference: str, *,
                           before_send: Callable[[], None] | None = None) -> None:
        """202, else AlreadyScanning (409), Unsupported (400), NoScanner (412), NotFound.
        ``before_send`` may refuse the trigger at the last moment by raising (a stop)."""
        path = f"{self._repo_path(project, repository)}/artifacts/{quote(reference, safe=':')}"
        await self._request("POST", path + "/scan", json_body=SCAN_BODY, want="none",
                            before_send=before_send)

    async def vulnerabilities(self, project: str, repository: str, reference: str) -> object:
        """The raw vulnerabilities addition (``{}`` while not scanned or scanning)."""
        path = f"{self._repo_path(project, repository)}/artifacts/{quote(reference, safe=':')}"
        body, _ = await self._request("GET", path + "/additions/vulnerabilities", limit=REPORT)
        return body

    async def scan_log(self, project: str, repository: str, reference: str,
                       report_id: str) -> str:
        path = (f"{self._repo_path(project, repository)}/artifacts/"
                f"{quote(reference, safe=':')}/scan/{quote(report_id, safe='')}/log")
        body, _ = await self._request("GET", path, want="text", limit=REPORT)
        return str(body)

    # -- webhook policies (project admin; daemon/harbor/hookpolicy.py reads the bodies) ---------

    def _policies_path(self, project: str) -> str:
        return f"/projects/{quote(project, safe='')}/webhook/policies"

    async def webhook_policies(self, project: str) -> list[Any]:
        return await self._get_all(self._policies_path(project))

    async def create_webhook_policy(self, project: str, body: Mapping[str, Any]) -> None:
        await self._request("POST", self._policies_path(project), json_body=body, want="none")

    async def update_webhook_policy(self, project: str, policy_id: int,
                                    body: Mapping[str, Any]) -> None:
        await self._request("PUT", f"{self._policies_path(project)}/{policy_id}",
                            json_body=body, want="none")

    async def webhook_executions(self, project: str, policy_id: int, last: int) -> list[Any]:
        """The policy's ``last`` delivery executions, newest first (Harbor ≥ 2.8; NotFound
        before)."""
        body, _ = await self._request(
            "GET", f"{self._policies_path(project)}/{policy_id}/executions",
            params={"page": 1, "page_size": min(max(1, last), PAGE_SIZE), "sort": "-id"})
        return _as_list(body, "webhook executions")
    async def build_history(self, project: str, repository: str, digest: str) -> object:
        """The ``build_history`` addition: the image config's history (a JSON list)."""
        path = f"{self._repo_path(project, repository)}/artifacts/{quote(digest, safe=':')}"
        body, _ = await self._request("GET", path + "/additions/build_history")
        return body

    async def manifest(self, project: str, repository: str, digest: str) -> object:
        """The image manifest (or index) from the registry's ``/v2/`` API, with a pull token
        from the realm its 401 names (Docker distribution token auth, this account's
        credentials). Once a 401 has named the realm, each repository's token is asked for
        directly, once, and kept until it expires; a kept token refused is fetched anew once,
        a fresh one refused means the account may not pull there (``AuthFailed``, 401)."""
        name = f"{project}/{wire.strip_project(project, repository)}"
        path = f"/v2/{name}/manifests/{digest}"
        url = f"{self._root}/v2/{name}/manifests/{quote(digest, safe=':')}"
        lock = self._token_locks.setdefault(name, asyncio.Lock())
        for attempt in range(2):
            fresh = False
            async with lock:
                token = self._tokens.get(name)
                if (token is None or token[1] <= time.monotonic()) and self._challenge:
                    await self._fetch_token(name, self._challenge)
                    token, fresh = self._tokens.get(name), True
            headers = dict(MANIFEST_ACCEPT)
            if token is not None:
                headers["Authorization"] = f"Bearer {token[0]}"
            body, got = await self._request("GET", path, url=url, auth=None, headers=headers,
                                            challenge=True)
            if body is not None:
                return body
            challenge = wire.bearer_challenge(got.get("Www-Authenticate", ""))
            async with lock:
                if self._tokens.get(name) == token:
                    self._tokens.pop(name, None)
                if challenge is not None:
                    self._challenge = wire.Challenge(challenge.realm, challenge.service, "")
            if attempt or fresh or (challenge is None and token is None):
                break
        user = self.registry.username or "anonymous"
        raise AuthFailed(f"registry {self.name}: GET {path}: 401: {user} has no pull access",
                         401)

    async def _fetch_token(self, name: str, challenge: wire.Challenge) -> None:
        if not challenge.realm.startswith(self._root + "/"):
            # Credentials go only to this registry's own token service.
            raise AuthFailed(f"registry {self.name}: token realm {challenge.realm} is not on "
                             f"{self._root}; refused", 401)
        scope = f"repository:{name}:pull"
        body, _ = await self._request("GET", "/service/token", url=challenge.realm,
                                      params={"service": challenge.service, "scope": scope})
        value, expires = wire.registry_token(body)
        self._tokens[name] = (value, time.monotonic() + max(10, expires - 30))

    def _repo_path(self, project: str, repository: str) -> str:
        return (f"/projects/{quote(project, safe='')}/repositories/"
                f"{encode_repository(project, repository)}")


def _decode(content: bytearray, response: httpx.Response, want: str) -> Any:
    if want == "none":
        return None
    if want == "text":
        return inbound.clean(content.decode(response.charset_encoding or "utf-8",
                                            errors="replace"))
    if not content.strip():
        return None
    return inbound.loads(content)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _reason(response: httpx.Response, content: bytearray) -> str:
    try:
        message = wire.harbor_error_message(inbound.loads(content)) if content.strip() else ""
    except ValueError:
        message = ""
    return message or response.reason_phrase


def _typed(where: str, response: httpx.Response, content: bytearray) -> HarborError:
    status = response.status_code
    message = f"{where}: {status} {_reason(response, content)}"
    kinds: dict[int, type[HarborError]] = {
        400: Unsupported, 401: AuthFailed, 403: AuthFailed, 404: NotFound,
        409: AlreadyScanning, 412: NoScanner,
    }
    return kinds.get(status, HarborError)(message, status)


def _total(headers: httpx.Headers) -> int | None:
    value = headers.get("X-Total-Count")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _as_list(body: object, path: str) -> list[Any]:
    if body is None:
        return []
    if not isinstance(body, list):
        raise BadResponse(f"{path}: expected a list, got {type(body).__name__}")
    return body
