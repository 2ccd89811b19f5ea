"""Where a receiver URL sends, as apprise reads it, for checks that send nothing
(`scanwatch doctor`): the channel layer is the one place that imports apprise."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """Where a receiver URL sends, as apprise reads it, for a check that sends nothing
    (`scanwatch doctor`): SMTP with its TLS mode and login, or an HTTP(S) host."""

    kind: str  # "smtp" or "http"
    host: str
    port: int
    tls: str = ""  # smtp: "", "starttls" or "ssl"; http: "https" or ""
    user: str = ""
    password: str = ""


def endpoint(url: str) -> Endpoint | None:
    """The endpoint of an apprise ``url`` (None where apprise cannot read it)."""
    from urllib.parse import urlsplit

    import apprise

    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return None
    smtp_host = getattr(plugin, "smtp_host", None)
    if smtp_host:
        mode = str(getattr(plugin, "secure_mode", "") or "")
        tls = {"starttls": "starttls", "ssl": "ssl"}.get(mode, "")
        return Endpoint("smtp", smtp_host, int(plugin.port or (465 if tls == "ssl" else 25)),
                        tls, str(plugin.user or ""), str(plugin.password or ""))
    fixed = getattr(plugin, "webhook_url", None) or getattr(plugin, "notify_url", None)
    if isinstance(fixed, str) and fixed.startswith("http"):  # a service's own address
        parts = urlsplit(fixed)
        secure = parts.scheme == "https"
        return Endpoint("http", parts.hostname or "", parts.port or (443 if secure else 80),
                        "https" if secure else "")
    host = getattr(plugin, "host", None)
    if not host:
        return None
    secure = bool(getattr(plugin, "secure", False))
    return Endpoint("http", str(host), int(plugin.port or (443 if secure else 80)),
                    "https" if secure else "")
