"""Secrets in the configuration: ``"${ENV_NAME}"`` (whole value or inside a URL) or a ``*_file``.

Resolved at load into ``Secret`` values. No message written here ever contains a secret's value:
only the key's TOML path, the variable's name or the file's path.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from daemon import config_types as ct
from daemon import log
from daemon.config_checks import Ctx, show

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://\S")



def secret_pair(ctx: Ctx, where: str, table: dict[str, Any], key: str) -> ct.Secret | None:
    """``key`` or ``key_file``: exactly one of them. None when it is unusable (a problem)."""
    inline, from_file = table.get(key), table.get(f"{key}_file")
    if inline is not None and from_file is not None:
        ctx.problem(f"{where}.{key}", f"give {key} or {key}_file, not both")
        return None
    if inline is None and from_file is None:
        ctx.problem(f"{where}.{key}", f'required: {key} = "${{ENV_NAME}}" or {key}_file = '
                    '"/run/credentials/scanwatch.service/harbor"')
        return None
    if inline is not None:
        if inline == "":
            ctx.problem(f"{where}.{key}", 'must not be empty: give "${ENV_NAME}" or '
                        f"{key}_file")
            return None
        if not isinstance(inline, str):
            ctx.problem(f"{where}.{key}", f'must be a string such as "${{ENV_NAME}}", got '
                        f"{show(inline, secret=True)}")
            return None
        return resolve_secret(ctx, f"{where}.{key}", inline)
    return _secret_file(ctx, f"{where}.{key}_file", from_file)


def resolve_secret(ctx: Ctx, where: str, text: str, *, literal_warning: bool = True) -> ct.Secret:
    """Expand every ``${NAME}``; a value without any is a literal secret (a warning)."""
    refs = _ENV_REF.findall(text)
    if not refs:
        if literal_warning:
            ctx.warn(where, "a literal secret in the file; prefer ${ENV} or "
                     f"{where.rsplit('.', 1)[-1].split('[')[0]}_file")
        return ct.Secret(text, "literal")
    unset = [n for n in dict.fromkeys(refs) if not ctx.environ.get(n)]
    for env_name in unset:
        ctx.missing(where, f"environment variable {env_name} is not set or empty")
    source = "env:" + ",".join(dict.fromkeys(refs))
    if unset:
        return ct.Secret(None, source)
    for env_name in refs:
        # Whatever shape carries it later (a URL's query, a header), its value is redacted.
        log.register_secret(ctx.environ[env_name])
    value = _ENV_REF.sub(lambda m: ctx.environ[m[1]], text)
    return ct.Secret(value, source)


def _secret_file(ctx: Ctx, where: str, value: Any) -> ct.Secret | None:
    if not isinstance(value, str) or not value.strip():
        ctx.problem(where, f'must be a file path such as "/run/credentials/scanwatch.service/'
                    f'harbor", got {show(value)}')
        return None
    expanded = _ENV_REF.sub(lambda m: ctx.environ.get(m[1], m[0]), value)
    if _ENV_REF.search(expanded):
        ctx.missing(where, f"cannot expand {show(value)}: a variable in it is not set")
        return ct.Secret(None, f"file:{value}")
    path = ctx.base / expanded
    try:
        content = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        ctx.missing(where, f"cannot read {show(str(path), limit=300)}: {reason}")
        return ct.Secret(None, f"file:{path}")
    if not content:
        ctx.missing(where, f"{show(str(path), limit=300)} is empty")
        return ct.Secret(None, f"file:{path}")
    for line in content.splitlines():  # a urls_file holds one URL a line
        log.register_secret(line.strip())
    return ct.Secret(content, f"file:{path}")


def receiver_urls(
    ctx: Ctx, where: str, table: dict[str, Any]
) -> tuple[ct.Secret, ...] | None:
    inline, from_file = table.get("urls"), table.get("urls_file")
    if inline is None and from_file is None:
        ctx.problem(f"{where}.urls", 'required: a list of apprise URLs such as '
                    '["slack://T000/B000/XXXX/#security"] (or urls_file)')
        return None
    urls: list[ct.Secret] = []
    usable = True
    if inline is not None:
        if not isinstance(inline, list) or not inline:
            ctx.problem(f"{where}.urls", 'must be a non-empty list of apprise URLs such as '
                        f'["slack://T000/B000/XXXX/#security"], got {show(inline, secret=True)}')
            usable = False
        for n, item in enumerate(inline if isinstance(inline, list) else [], start=1):
            secret = _one_url(ctx, f"{where}.urls[{n}]", item)
            if secret is not None:
                urls.append(secret)
    if from_file is not None:
        secret = _secret_file(ctx, f"{where}.urls_file", from_file)
        if secret is None:
            return None
        lines = [ln.strip() for ln in secret.reveal().splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        if secret.present and not lines:
            ctx.missing(f"{where}.urls_file", f"{show(secret.source[5:], limit=300)} holds no URL "
                        "(one apprise URL a line)")
        for n, line in enumerate(lines, start=1):
            parsed = _one_url(ctx, f"{where}.urls_file[{n}]", line, from_file=True)
            if parsed is not None:
                urls.append(ct.Secret(parsed.reveal(), secret.source) if parsed.present else parsed)
    return tuple(urls) if usable else None


# apprise schemes whose URL carries its credential in the path or host part.
TOKEN_SCHEMES = frozenset({
    "slack", "slacks", "discord", "msteams", "tgram", "pover", "pbul", "gotify", "gotifys",
    "ntfy", "ntfys", "opsgenie", "pagerduty", "wxteams", "zulip", "sns", "rocket", "rockets",
    "mmost", "mmosts", "matrix", "matrixs", "signal", "signals", "twilio", "pushed", "join",
})


def secret_parts(url: str, *, every_query: bool = False) -> list[str]:
    """The pieces of a URL that are credentials: its userinfo password, the query values of
    secret-named keys, or with ``every_query`` (a receiver URL: Azure Functions take
    ``?code=``, other hooks ``?sig=``) every query value, and, for token schemes, the long
    host and path parts."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://([^/?#]*)([^?#]*)(?:\?([^#]*))?", url)
    if not match:
        return []
    scheme, authority, path, query = match.groups()
    parts: list[str] = []
    userinfo, at, host = authority.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        parts.append(password if colon else user)
    if scheme.lower() in TOKEN_SCHEMES:
        parts += [p for p in (host, *path.split("/")) if len(p) >= 8 and "." not in p]
    for pair in (query or "").split("&"):
        key, _, value = pair.partition("=")
        if value and (every_query or re.search(r"pass|secret|token|key", key, re.IGNORECASE)):
            parts.append(value)
            parts.append(unquote(value))  # as a library may log it, decoded
    return [p for p in parts if p]


def _one_url(ctx: Ctx, where: str, item: Any, *, from_file: bool = False) -> ct.Secret | None:
    if not isinstance(item, str) or not item.strip():
        ctx.problem(where, 'must be an apprise URL such as "slack://T000/B000/XXXX/#security", '
                    f"got {show(item, secret=True)}")
        return None
    secret = resolve_secret(ctx, where, item, literal_warning=False)
    # Check the URL's shape after expansion ("${SLACK_URL}" is a whole URL), never echoing it.
    if (secret.present or not item.startswith("${")) and not _URL.match(secret.reveal() or item):
        ctx.problem(where, 'must be an apprise URL such as "slack://T000/B000/XXXX/#security", '
                    "got a value without scheme://")
        return None
    text = secret.reveal() or item
    if ctx.receiver_schemes and (secret.present or not item.startswith("${")) \
            and not _scheme_known(text):
        # Only the scheme is shown: the rest of a receiver URL is its credential.
        ctx.problem(where, f"unknown apprise scheme {show(text.partition('://')[0] + '://')}: "
                    "see https://github.com/caronc/apprise/wiki for the services it knows")
        return None
    # A literal password in userinfo is worth a warning, and so is a URL of a scheme whose
    # path is its token (slack://T…/B…/token) written without any ${ENV}.
    # (Userinfo ends before any "/?#": an "@" in the query, as in mailto's from=, is no password.)
    if not from_file and re.match(r"^[^:]+://[^/?#@\s]*:(?!\$\{)[^/?#@\s]+@", item):
        ctx.warn(where, "a literal password in the URL; prefer ${ENV} or urls_file")
    elif not from_file and "${" not in item and item.split("://", 1)[0].lower() in TOKEN_SCHEMES:
        ctx.warn(where, "a literal token in the URL; prefer ${ENV} or urls_file")
    return secret


def _scheme_known(url: str) -> bool:
    # The channel layer knows which schemes apprise has (it is the one module importing it).
    from daemon.alerts.deliver import scheme_known

    return scheme_known(url)
