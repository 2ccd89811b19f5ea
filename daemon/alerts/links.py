"""Where a reader clicks (pure): a vulnerability's advisory, scanwatch's own pages.

- Advisory: ``[daemon] advisory_url`` is a template with ``{id}`` (default NVD's page); with the
  default, GitHub advisories (``GHSA-…``) go to github.com/advisories and Go's (``GO-…``) to
  pkg.go.dev/vuln, whose ids NVD does not know. (Harbor's reports name a primary link, but
  history keeps no links: Harbor never refreshes them, see DESIGN "Identity".)
- scanwatch's pages, when ``[daemon] public_url`` is set (the web pages serve them):
  ``{public_url}/findings?registry=R[&project=P&repository=Q]`` for "Details", and
  ``{public_url}/images/{registry}/{project}/{repository}@{digest}`` for an image.
  Without ``public_url`` a message names the exact ``scanwatch findings`` command instead.

Harbor's own pages for an artifact are ``group.harbor_link``.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

DEFAULT_ADVISORY_URL = "https://nvd.nist.gov/vuln/detail/{id}"
_BY_PREFIX = (("GHSA-", "https://github.com/advisories/{id}"),
              ("GO-", "https://pkg.go.dev/vuln/{id}"))


def advisory_link(vulnerability: str, template: str = "") -> str:
    """The advisory page of a vulnerability id, or "" for an id that is no single token."""
    vid = vulnerability.strip()
    if not vid or any(c.isspace() for c in vid):
        return ""
    if not template or template == DEFAULT_ADVISORY_URL:
        template = next((t for p, t in _BY_PREFIX if vid.upper().startswith(p)),
                        DEFAULT_ADVISORY_URL)
    return template.replace("{id}", quote(vid, safe=""))


def findings_page(public_url: str, registry: str, project: str = "", repository: str = ""
                  ) -> str:
    """scanwatch's findings page for a registry (or one repository), "" without public_url."""
    if not public_url:
        return ""
    query = {"registry": registry}
    if project:
        query["project"] = project
    if repository:
        query["repository"] = repository
    return f"{public_url.rstrip('/')}/findings?{urlencode(query)}"


def image_page(public_url: str, registry: str, project: str, repository: str, digest: str
               ) -> str:
    """scanwatch's page of one artifact, "" without public_url or digest."""
    if not public_url or not digest:
        return ""
    path = "/".join(quote(part, safe="") for part in (registry, project))
    return (f"{public_url.rstrip('/')}/images/{path}/{quote(repository, safe='/')}"
            f"@{quote(digest, safe=':')}")
