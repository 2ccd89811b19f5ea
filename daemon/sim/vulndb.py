"""The scanner's vulnerability database: what a scan of a package at a version finds.

Generated deterministically from the seed (per package, a list of CVEs each fixed from some later
version on, or never), or loaded from real Trivy reports (see :mod:`daemon.sim.trivy`). A DB update
changes entries in place of the table; reports already stored keep the items they were made from,
so, as in Harbor, a report changes only when its artifact is rescanned.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from daemon.sim import catalog

SEVERITIES = ("Critical", "High", "Medium", "Low", "Unknown")
RANK = {"Critical": 5, "High": 4, "Medium": 3, "Low": 2, "None": 1, "Unknown": 0}
VERSIONS_PER_PACKAGE = 6


def stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class Item:
    """One vulnerability of one package version, as Harbor stores it (before the JSON quirks)."""

    id: str
    package: str
    version: str
    fix_version: str
    severity: str
    description: str
    links: tuple[str, ...]
    cwe_ids: tuple[str, ...]
    cvss: Mapping[str, Mapping[str, Any]] | None
    status: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.id, self.package, self.version)


@dataclass(frozen=True)
class _Cve:
    id: str
    fixed_at: int | None
    severity: str
    description: str
    links: tuple[str, ...]
    cwe_ids: tuple[str, ...]
    cvss: Mapping[str, Mapping[str, Any]] | None
    will_not_fix: bool


def _cvss_for(rng: random.Random, severity: str) -> dict[str, dict[str, Any]] | None:
    roll = rng.random()
    if roll < 0.15:
        return None
    base = {"Critical": 9.1, "High": 7.5, "Medium": 5.3, "Low": 3.1, "Unknown": 5.0}[severity]
    score = round(min(10.0, base + rng.choice((0.0, 0.3, 0.7))), 1)
    v2 = {"V2Score": round(score * 0.9, 1), "V2Vector": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}
    if roll < 0.3:  # only a v2 score: Harbor's preferred_cvss.score_v3 becomes 0
        return {"nvd": v2}
    v3 = {"V3Score": score,
          "V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" if score >= 9
          else "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:L"}
    result: dict[str, dict[str, Any]] = {"nvd": {**v2, **v3}}
    if rng.random() < 0.3:
        result["redhat"] = {"V3Score": round(max(0.1, score - 1.2), 1), "V3Vector": v3["V3Vector"]}
    return result


def _make_cve(rng: random.Random, package: str, cve_id: str, fixed_at: int | None,
              severity: str) -> _Cve:
    word = rng.choice(catalog.WORDS)
    roll = rng.random()
    if roll < 0.85:
        links: tuple[str, ...] = (f"https://avd.aquasec.com/nvd/{cve_id.lower()}",)
    elif roll < 0.95:
        links = (f"https://security-tracker.debian.org/tracker/{cve_id}",
                 f"https://nvd.nist.gov/vuln/detail/{cve_id}")
    else:
        links = ()
    cwes = tuple(rng.sample(catalog.CWES, rng.choice((1, 1, 2)))) if rng.random() < 0.75 else ()
    return _Cve(id=cve_id, fixed_at=fixed_at, severity=severity,
                description=f"A {word} flaw was found in {package}.", links=links, cwe_ids=cwes,
                cvss=_cvss_for(rng, severity), will_not_fix=fixed_at is None and rng.random() < 0.2)


class VulnDB:
    """Package versions → vulnerability items; generated lazily, then overridden by updates."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._table: dict[tuple[str, str], tuple[Item, ...]] = {}
        self._versions: dict[str, list[list[str]]] = {}
        for family in (*catalog.OS_FAMILIES.values(), *catalog.LANGUAGES.values()):
            for name, first in family:
                versions = [catalog.bump(first, i) for i in range(VERSIONS_PER_PACKAGE)]
                self._versions.setdefault(name, []).append(versions)
        self.generation = 0
        self._counts: dict[tuple[str, str], list[tuple[str, int]]] = {}
        self._updates = 0

    # ---- generation ---------------------------------------------------------------------------
    def versions_of(self, package: str, version: str) -> list[str] | None:
        for versions in self._versions.get(package, ()):
            if version in versions:
                return versions
        return None

    def _cves(self, package: str, versions: list[str]) -> list[_Cve]:
        rng = random.Random(stable_seed(self.seed, "cves", package, versions[0]))
        cves = []
        for _ in range(rng.choice((0, 1, 2, 3, 4, 5, 6, 8))):
            cve_id = f"CVE-{rng.randint(2018, 2024)}-{rng.randint(1000, 49999)}"
            fixed_at = None if rng.random() < 0.25 else rng.randint(1, VERSIONS_PER_PACKAGE - 1)
            severity = rng.choices(SEVERITIES, weights=(10, 30, 35, 20, 5))[0]
            cves.append(_make_cve(rng, package, cve_id, fixed_at, severity))
        return cves

    def _generate(self, package: str, version: str) -> tuple[Item, ...]:
        versions = self.versions_of(package, version)
        if versions is None:
            return ()
        index = versions.index(version)
        items = []
        seen = set()
        for cve in self._cves(package, versions):
            if cve.id in seen or (cve.fixed_at is not None and index >= cve.fixed_at):
                continue
            seen.add(cve.id)
            fix = versions[cve.fixed_at] if cve.fixed_at is not None else ""
            status = "fixed" if fix else ("will_not_fix" if cve.will_not_fix else "affected")
            items.append(Item(cve.id, package, version, fix, cve.severity, cve.description,
                              cve.links, cve.cwe_ids, cve.cvss, status))
        return tuple(items)

    def lookup(self, package: str, version: str) -> tuple[Item, ...]:
        key = (package, version)
        found = self._table.get(key)
        if found is None:
            found = self._generate(package, version)
            self._table[key] = found
        return found

    def load(self, items: Iterable[Item]) -> None:
        """Add items from a real report (Trivy); duplicates by (id, package, version) collapse."""
        grouped: dict[tuple[str, str], dict[str, Item]] = {}
        for item in items:
            grouped.setdefault((item.package, item.version), {})[item.id] = item
        for key, by_id in grouped.items():
            merged = {i.id: i for i in self._table.get(key, ())}
            merged.update(by_id)
            self._table[key] = tuple(merged.values())

    def choose_packages(self, rng: random.Random, wanted: int) -> list[tuple[str, str]]:
        """Packages of a plausible image (one OS family, maybe one language) carrying about
        ``wanted`` vulnerabilities."""
        family = rng.choice(sorted(catalog.OS_FAMILIES))
        pool = list(catalog.OS_FAMILIES[family])
        language = rng.choice((*sorted(catalog.LANGUAGES), None))
        if language is not None:
            pool += list(catalog.LANGUAGES[language])
        rng.shuffle(pool)
        return self.choose_from(rng, pool, wanted)

    def choose_from(self, rng: random.Random, pool: list[tuple[str, str]],
                    wanted: int) -> list[tuple[str, str]]:
        """Versions of the packages of ``pool`` (in its order) carrying about ``wanted``
        vulnerabilities in all."""
        chosen: list[tuple[str, str]] = []
        remaining = wanted
        for name, first in pool:
            options = self._counted(name, first)
            pick = None
            for k in rng.sample(range(len(options)), len(options)):
                version, count = options[k]
                if count <= remaining and (count > 0 or remaining == 0 or rng.random() < 0.3):
                    pick = version
                    break
            if pick is None:
                continue
            chosen.append((name, pick))
            remaining -= len(self.lookup(name, pick))
        return chosen

    def _counted(self, name: str, first: str) -> list[tuple[str, int]]:
        key = (name, first)
        found = self._counts.get(key)
        if found is None:
            versions = [catalog.bump(first, i) for i in range(VERSIONS_PER_PACKAGE)]
            found = [(v, len(self.lookup(name, v))) for v in versions]
            self._counts[key] = found
        return found

    def upgrade(self, rng: random.Random, package: str, version: str) -> str:
        """The version a rebuild moves to: a released fix if there is one, else the next one."""
        fixes = sorted({i.fix_version for i in self.lookup(package, version) if i.fix_version})
        if fixes and rng.random() < 0.8:
            return fixes[0]
        return catalog.bump(version)

    # ---- updates --------------------------------------------------------------------------------
    def update(self, in_use: Mapping[tuple[str, str], set[str]], *, added: float,
               fix_released: float, rescored: float, rng: random.Random
               ) -> dict[str, list[dict[str, Any]]]:
        """Advance the DB: a share of the package versions in use gain a CVE, a share of unfixed
        vulnerabilities gain a fix version, a share are rescored. Returns what changed."""
        self._updates += 1
        self.generation += 1
        keys = sorted(in_use)
        changes: dict[str, list[dict[str, Any]]] = {"added": [], "fix_released": [], "rescored": []}

        def entry(item: Item) -> dict[str, Any]:
            return {"id": item.id, "package": item.package, "version": item.version,
                    "fix_version": item.fix_version, "severity": item.severity,
                    "repositories": sorted(in_use[(item.package, item.version)])}

        def count(share: float, total: int) -> int:
            return 0 if total == 0 or share <= 0 else max(1, round(share * total))

        for n, key in enumerate(rng.sample(keys, count(added, len(keys)))):
            package, version = key
            severity = rng.choice(("Critical", "High", "Medium", "Low")) if n == 0 else \
                rng.choices(SEVERITIES, weights=(10, 30, 35, 20, 5))[0]
            cve_id = f"CVE-2025-{50000 + self._updates * 1000 + n}"
            fix = catalog.bump(version) if rng.random() < 0.5 else ""
            cve = _make_cve(rng, package, cve_id, None, severity)
            item = Item(cve_id, package, version, fix, severity, cve.description, cve.links,
                        cve.cwe_ids, cve.cvss, "fixed" if fix else "affected")
            self._table[key] = (*self.lookup(package, version), item)
            changes["added"].append(entry(item))

        unfixed = [(k, i) for k in keys for i in self.lookup(*k) if not i.fix_version]
        for key, item in rng.sample(unfixed, count(fix_released, len(unfixed))):
            new = dataclasses.replace(item, fix_version=catalog.bump(item.version), status="fixed")
            self._replace(key, new)
            changes["fix_released"].append(entry(new))

        scored = [(k, i) for k in keys for i in self.lookup(*k)]
        for key, item in rng.sample(scored, count(rescored, len(scored))):
            order = ["Low", "Medium", "High", "Critical"]
            current = order.index(item.severity) if item.severity in order else 1
            step = 1 if current < 3 and (current == 0 or rng.random() < 0.6) else -1
            new = dataclasses.replace(item, severity=order[current + step])
            self._replace(key, new)
            changes["rescored"].append(entry(new))
        return changes

    def _replace(self, key: tuple[str, str], new: Item) -> None:
        self._table[key] = tuple(new if i.id == new.id else i for i in self._table[key])
