"""A run, a scanner DB update, another run: one message per receiver saying what changed.

The simulator is in-process (its DB update returns exactly what it changed); ``scanwatch run
--once`` is the real console script; the receivers are a JSON webhook served here and an SMTP
server (aiosmtpd), both on 127.0.0.1. The messages are checked against the simulator's list of
changes: new CVEs, fixes released and rescored severities, grouped by fix action.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hookkit import Hook
from mailkit import SmtpInbox, running_smtp
from runkit import sim_toml

from daemon.sim import SimOptions, start_simulator

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))
KINDS = ("added", "fix_released", "rescored")  # in the order the simulator applies them


@dataclass
class Scenario:
    sim: Any
    changes: dict[str, list[dict[str, Any]]]
    first: dict[str, Any]  # run --once --format json, before the DB update
    second: dict[str, Any]  # … after it
    hooks: tuple[int, int]  # webhook bodies after the first run, after the second
    mails: tuple[int, int]
    hook: Hook
    inbox: SmtpInbox

    @property
    def document(self) -> dict[str, Any]:
        [body] = self.hook.bodies[self.hooks[0]:]
        return dict(json.loads(body["message"]))

    @property
    def mail_text(self) -> str:
        [mail] = self.inbox.messages[self.mails[0]:]
        [plain] = [p for p in mail.walk() if p.get_content_type() == "text/plain"]
        payload = plain.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("alerts")
    hook = Hook()
    servers = contextlib.ExitStack()
    inbox, smtp_port = servers.enter_context(running_smtp())
    # Every artifact scanned at start: the first run imports them all (first sight). Indexes
    # make the same package appear at two versions in one repository (amd64 and arm builds).
    sim = start_simulator(SimOptions(
        seed=1, projects=2, repositories_per_project=2, artifacts_per_repository=2,
        scanned_share=1.0, index_share=0.25, chart_share=0.0, scan_seconds=0.05,
        scanner_concurrency=4, job_workers=8))
    config = tmp / "config.toml"
    config.write_text(f"""\
{sim_toml(tmp / 'history.db', sim.url, drain=True, in_flight=8)}
[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["sim"]
select = ["changed", "unscanned", "failed", "db_updated"]

[[receiver]]
name = "hook"
urls = ["json://127.0.0.1:{hook.port}/hook"]

[[receiver]]
name = "mail"
urls = ["mailto://127.0.0.1:{smtp_port}?from=scanwatch@example.org&to=ops@example.org"]

[[route]]
receivers = ["hook", "mail"]
min_severity = "None"
events = ["new", "fix_available", "severity_up", "severity_down"]
""")
    env = {**os.environ, "SIM_PASSWORD": sim.admin[1]}
    env.pop("SCANWATCH_CONFIG", None)

    def run_once() -> dict[str, Any]:
        result = subprocess.run([SCANWATCH, "run", "--once", "--config", str(config),
                                 "--format", "json"], capture_output=True, text=True, env=env,
                                timeout=180)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return dict(json.loads(result.stdout))

    try:
        first = run_once()
        after_first = (len(hook.bodies), len(inbox.messages))
        changes = sim.control.db_update()
        second = run_once()
        yield Scenario(sim, {k: changes[k] for k in KINDS}, first, second,
                       (after_first[0], len(hook.bodies)), (after_first[1], len(inbox.messages)),
                       hook, inbox)
    finally:
        sim.stop()
        servers.close()
        hook.shutdown()
        hook.server_close()


def final_state(changes: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str, str], Any]:
    """(CVE, package, installed version) → the entry as it stands after the whole update."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for kind in KINDS:
        for entry in changes[kind]:
            key = (entry["id"], entry["package"], entry["version"])
            out[key] = {**entry, "kinds": (*out.get(key, {}).get("kinds", ()), kind)}
    return out


def versions_in_repositories(sim: Any) -> dict[tuple[str, str, str], set[str]]:
    """(repository, CVE, package) → the installed versions carrying it now, from the simulator's
    own scanner DB over every single-platform image (index children included)."""
    out: dict[tuple[str, str, str], set[str]] = {}
    with sim.state.lock:
        for art in sim.state.inventory.all_artifacts():
            if art.type != "IMAGE" or art.children:
                continue
            for package, version in art.packages:
                for item in sim.state.db.lookup(package, version):
                    out.setdefault((art.repo.name, item.id, package), set()).add(version)
    return out


def actions(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(section, a) for section in ("fix_now", "no_fix") for a in doc[section]]


def where(action: dict[str, Any]) -> set[str]:
    return {f"{i['project']}/{i['repository']}" for i in action["images"]}


# -- the tests -------------------------------------------------------------------------------


def test_it_sends_nothing_per_cve_at_first_sight(scenario: Scenario) -> None:
    [run] = scenario.first["runs"]
    [reg] = run["registries"]
    assert reg["imported"] == reg["artifacts"] > 0 and reg["triggered"] == 0
    assert scenario.first["alerts"]["queued"] == 0
    assert scenario.hooks[0] == 0 and scenario.mails[0] == 0


def test_it_rescans_every_image_after_the_db_update(scenario: Scenario) -> None:
    [run] = scenario.second["runs"]
    [reg] = run["registries"]
    assert reg["lanes"] == {"db_updated": reg["artifacts"]}
    assert reg["outcomes"] == {"complete": reg["artifacts"]}
    assert all(scenario.changes[k] for k in KINDS)  # the update changed something of each kind


def test_it_sends_exactly_one_message_to_each_receiver(scenario: Scenario) -> None:
    assert scenario.second["alerts"] == {"queued": 2, "sent": 2, "pending": 0, "dead": 0}
    assert scenario.hooks[1] - scenario.hooks[0] == 1
    assert scenario.mails[1] - scenario.mails[0] == 1
    assert scenario.hook.paths[-1] == "/hook"
    doc = scenario.document
    assert doc["schema"] == "scanwatch.alert/v2" and doc["receiver"] == "hook"
    assert doc["registry"] == "sim" and doc["context"] == "nightly"
    assert doc["fixed"] is None and doc["scan_problems"] == []
    assert any(i["tags"] for _, a in actions(doc) for i in a["images"])  # images named by tag


def test_it_lists_every_change_under_its_fix_action(scenario: Scenario) -> None:
    doc = scenario.document
    found = actions(doc)
    keys = [(s, a["package"], a["installed_version"]) for s, a in found]
    assert len(keys) == len(set(keys)), "one action per (package, installed version)"
    for section, a in found:
        assert (section == "fix_now") == bool(a["fix_version"])
        assert all(v["fix_version"] for v in a["vulnerabilities"]) == (section == "fix_now")
    state = final_state(scenario.changes)
    carried = versions_in_repositories(scenario.sim)
    assert {v["id"] for _, a in found for v in a["vulnerabilities"]} <= {k[0] for k in state}
    checked = 0
    for (cve, package, version), entry in state.items():
        for repository in entry["repositories"]:
            if carried[(repository, cve, package)] != {version}:
                continue  # the finding spans versions: see the test below
            [(section, action, vuln)] = [
                (s, a, v) for s, a in found for v in a["vulnerabilities"]
                if v["id"] == cve and a["package"] == package and repository in where(a)]
            assert action["installed_version"] == version
            assert vuln["severity"] == entry["severity"], (cve, entry["kinds"])
            assert vuln["fix_version"] == (entry["fix_version"] or None)
            assert section == ("fix_now" if entry["fix_version"] else "no_fix")
            fixes = {v["fix_version"] for v in action["vulnerabilities"]}
            assert action["fix_version"] in fixes | {None}  # the one fixing all of its CVEs
            if len(action["vulnerabilities"]) == 1:
                assert action["fix_version"] == (entry["fix_version"] or None)
            checked += 1
    assert checked >= sum(len(scenario.changes[k]) for k in KINDS) // 2  # most of them
    for entry in scenario.changes["added"]:  # a brand-new CVE id is always a single version
        assert entry["id"] in {v["id"] for _, a in found for v in a["vulnerabilities"]}


def test_it_names_every_cve_of_the_message_in_the_mails_plain_text(scenario: Scenario) -> None:
    doc = scenario.document
    text = scenario.mail_text
    ids = {v["id"] for _, a in actions(doc) for v in a["vulnerabilities"]}
    assert ids and all(cve in text for cve in ids)
    for _, a in actions(doc):
        if a["fix_version"]:
            assert f"{a['package']} {a['installed_version']} → {a['fix_version']}" in text
    added = {e["id"] for e in scenario.changes["added"]}
    assert added <= ids


def test_it_gives_each_installed_version_of_a_finding_its_own_fix(scenario: Scenario) -> None:
    found = actions(scenario.document)
    carried = versions_in_repositories(scenario.sim)
    spanning = [(entry, repository) for entry in scenario.changes["fix_released"]
                for repository in entry["repositories"]
                if len(carried[(repository, entry["id"], entry["package"])]) > 1]
    assert spanning, "seed 1 has a fix released for a finding at two versions in one repository"
    for entry, repository in spanning:
        mine = [(a, v) for _, a in found for v in a["vulnerabilities"]
                if v["id"] == entry["id"] and a["package"] == entry["package"]
                and repository in where(a)]
        assert mine, entry
        # One action per installed version, each with that version's own fix.
        assert not any(", " in a["installed_version"] for a, _ in mine), mine
        matches = [(a, v) for a, v in mine if a["installed_version"] == entry["version"]]
        assert len(matches) == 1, (entry, [a["installed_version"] for a, _ in mine])
        assert matches[0][1]["fix_version"] == entry["fix_version"]


WHY = {"added": ("new", "advisory_published"), "fix_released": ("fix_available", "fix_released"),
       "rescored": ("severity_changed", "rescored")}


def test_every_item_says_why_as_the_simulator_changed_it(scenario: Scenario) -> None:
    """Each vulnerability's change and reason is one the simulator's update made to it, and the
    email names it in words."""
    state = final_state(scenario.changes)
    text = scenario.mail_text
    checked = 0
    for _, a in actions(scenario.document):
        for v in a["vulnerabilities"]:
            assert (v["change"], v["reason"]) in WHY.values(), v
            entry = state.get((v["id"], a["package"], a["installed_version"]))
            if entry is None:
                continue  # a version the update reached through another one of the finding
            assert (v["change"], v["reason"]) in {WHY[k] for k in entry["kinds"]}, (v, entry)
            checked += 1
    assert checked >= len(state) // 2
    for words in ("newly published", "fix released", "rescored"):
        assert words in text
