"""OpenVEX as a source of "not affected": a statement silences exactly the findings it names
(by digest, by ``pkg:oci`` PURL, by repository glob), removing it brings them back once, and
``scanwatch vex export`` round-trips through the importer. Real SQLite file, the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon import config as config_mod
from daemon.ignores import IgnoreRules
from daemon.intel import vex
from daemon.model import ChangeKind, Reason
from daemon.store.db import open_store
from tests.store.store_helpers import REG, artifact, at, success

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))


def openvex(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.org/vex/1", "author": "platform team",
            "timestamp": "2026-03-01T10:00:00Z", "version": 1, "statements": statements}


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Two repositories of registry ``prod``: payments/api (sha256:a) and payments/web
    (sha256:b), both with the real Git CVE and a libc one."""
    db = tmp_path / "h.db"
    store = open_store(f"sqlite:///{db}")
    try:
        for digest, repo in (("sha256:" + "a" * 64, "api"), ("sha256:" + "b" * 64, "web")):
            store.record_inventory(REG, [artifact(digest, "1.0", repository=repo)], at(0))
            store.record_scan(success(digest, [
                "CVE-2025-48384:git:1:2.39.5-0+deb12u1", "CVE-2025-4802:libc6:2.36-9"],
                at(0), repository=repo), at(0))
    finally:
        store.close()
    return db


def write_config(tmp: Path, db: Path, extra: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""\
[daemon]
database = "sqlite:///{db}"

[[registry]]
name = "{REG}"
url = "https://harbor.example.com"
username = "robot$scanwatch"
password = "x"
{extra}""")
    return path


def ignored(config: Path) -> dict[tuple[str, str], str]:
    proc = subprocess.run([SCANWATCH, "findings", "--include-ignored", "--format", "json",
                           "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    rows = rows["findings"] if isinstance(rows, dict) else rows
    return {(r["repository"], r["vulnerability"]): r["ignore_reason"] for r in rows
            if r["ignored"]}


@pytest.mark.parametrize("product", [
    "sha256:" + "a" * 64,
    "pkg:oci/api@sha256%3A" + "a" * 64 + "?repository_url=harbor.example.com/payments/api",
    "pkg:oci/api?repository_url=harbor.example.com/payments/api&tag=1.0",
    "payments/ap*",
], ids=["digest", "purl-digest", "purl-repository", "glob"])
def test_a_not_affected_statement_silences_exactly_the_findings_it_names(
        tmp_path: Path, history: Path, product: str) -> None:
    doc = tmp_path / "team.openvex.json"
    doc.write_text(json.dumps(openvex([{
        "vulnerability": {"name": "CVE-2025-48384"}, "products": [{"@id": product}],
        "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}])))
    config = write_config(tmp_path, history, f'[[vex]]\nname = "team"\npath = "{doc}"\n')
    assert ignored(config) == {("api", "CVE-2025-48384"):
                               f"VEX not_affected: vulnerable_code_not_in_execute_path ({doc})"}


def test_under_investigation_and_affected_silence_nothing(tmp_path: Path, history: Path) -> None:
    doc = tmp_path / "v.json"
    doc.write_text(json.dumps(openvex([
        {"vulnerability": "CVE-2025-48384", "products": ["payments/*"],
         "status": "under_investigation"},
        {"vulnerability": "CVE-2025-4802", "products": ["payments/*"], "status": "affected",
         "action_statement": "Upgrade the base image to debian:12.12"}])))
    config = write_config(tmp_path, history, f'[[vex]]\nname = "v"\npath = "{doc}"\n')
    assert ignored(config) == {}
    cfg = config_mod.load(config, strict=False)
    store = open_store(f"sqlite:///{history}")
    try:
        rules = store.ignore_rules(cfg)
        notes = {f.key.vulnerability: rules.vex_note(f.key) for f in store.open_findings()
                 if f.key.repository == "api"}
    finally:
        store.close()
    assert notes == {"CVE-2025-48384": "VEX under_investigation",
                     "CVE-2025-4802": "VEX affected: Upgrade the base image to debian:12.12"}


def test_removing_the_statement_brings_the_findings_back_once(tmp_path: Path,
                                                               history: Path) -> None:
    doc = tmp_path / "v.json"
    doc.write_text(json.dumps(openvex([{
        "vulnerability": {"name": "CVE-2025-48384"}, "products": [{"@id": "payments/*"}],
        "status": "fixed"}])))
    cfg = config_mod.load(write_config(tmp_path, history,
                                       f'[[vex]]\nname = "v"\npath = "{doc}"\n'), strict=False)
    store = open_store(f"sqlite:///{history}")
    try:
        with_vex = store.ignore_rules(cfg)
        assert store.reconcile_ignores(with_vex, at(1)) == []  # marks set, nothing announced
        assert {f.key.repository for f in store.open_findings(include_ignored=True)
                if f.ignored} == {"api", "web"}
        back = store.reconcile_ignores(IgnoreRules(), at(2))
        again = store.reconcile_ignores(IgnoreRules(), at(3))
    finally:
        store.close()
    assert sorted((e.kind, e.reason, e.finding.repository, e.finding.vulnerability)
                  for e in back) == [
        (ChangeKind.REOPENED, Reason.IGNORE_EXPIRED, "api", "CVE-2025-48384"),
        (ChangeKind.REOPENED, Reason.IGNORE_EXPIRED, "web", "CVE-2025-48384")]
    assert again == []


def test_vex_export_round_trips_through_the_importer(tmp_path: Path, history: Path) -> None:
    doc = tmp_path / "team.json"
    doc.write_text(json.dumps(openvex([{
        "vulnerability": {"name": "CVE-2025-48384"},
        "products": [{"@id": "pkg:oci/web?repository_url=harbor.example.com/payments/web"}],
        "status": "not_affected", "justification": "component_not_present"}])))
    first = write_config(tmp_path, history, f"""\
[[vex]]
name = "team"
path = "{doc}"

[[ignore]]
vulnerability = "CVE-2025-4802"
package = "libc6"
repositories = ["payments/api"]
reason = "glibc is not reachable from the app"
expires = 2099-12-31
""")
    before = ignored(first)
    exported = tmp_path / "out" / "scanwatch.openvex.json"
    exported.parent.mkdir()
    proc = subprocess.run([SCANWATCH, "vex", "export", "--output", str(exported), "--config",
                           str(first)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(vex.parse(exported.read_bytes(), "x")) == 2
    (tmp_path / "config.toml").rename(tmp_path / "first.toml")
    second = write_config(tmp_path, history,
                          f'[[vex]]\nname = "exported"\npath = "{exported}"\n')
    after = ignored(second)
    assert set(before) == set(after) == {("web", "CVE-2025-48384"), ("api", "CVE-2025-4802")}


@pytest.mark.parametrize("body, message", [
    (b"{", "not JSON"),
    (json.dumps({"statements": []}).encode(), "not an OpenVEX document"),
    (json.dumps(openvex([{"vulnerability": "CVE-1", "products": ["x"],
                          "status": "maybe"}])).encode(), "statements[0].status"),
    (json.dumps(openvex([{"vulnerability": "CVE-1", "products": ["x"],
                          "status": "not_affected"}])).encode(), "needs a justification"),
], ids=["not-json", "no-context", "bad-status", "no-justification"])
def test_a_bad_document_is_refused_with_one_line_naming_it(body: bytes, message: str) -> None:
    with pytest.raises(vex.FeedInvalid) as caught:
        vex.parse(body, "team.json")
    assert message in str(caught.value) and str(caught.value).startswith("team.json")
    assert "\n" not in str(caught.value)


def test_a_vex_url_is_fetched_by_intel_refresh_and_then_silences(tmp_path: Path,
                                                                 history: Path) -> None:
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "www"
    served.mkdir()
    (served / "team.json").write_text(json.dumps(openvex([{
        "vulnerability": {"name": "CVE-2025-4802"}, "products": [{"@id": "payments/web"}],
        "status": "not_affected", "justification": "vulnerable_code_not_present"}])))

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/team.json"
        config = write_config(tmp_path, history, f'[[vex]]\nname = "team"\nurl = "{url}"\n')
        assert ignored(config) == {}  # not fetched yet: nothing silenced
        proc = subprocess.run([SCANWATCH, "intel", "refresh", "--format", "json", "--config",
                               str(config)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["feeds"][0]["outcome"] == "updated"
        again = subprocess.run([SCANWATCH, "intel", "refresh", "--format", "json", "--config",
                                str(config)], capture_output=True, text=True, timeout=60)
        assert json.loads(again.stdout)["feeds"][0]["outcome"] == "unchanged"  # a 304
    finally:
        server.shutdown()
    assert set(ignored(config)) == {("web", "CVE-2025-4802")}


# glibc in Debian 12 (real CVEs and versions; fixed in 2.36-9+deb12u11 and u13).
LIBC_4802 = "CVE-2025-4802:libc6:2.36-9+deb12u10:2.36-9+deb12u11"
LIBC_8058 = "CVE-2025-8058:libc6:2.36-9+deb12u10:2.36-9+deb12u13"


def test_affected_and_under_investigation_notes_reach_the_alert_and_findings(
        tmp_path: Path) -> None:
    """``affected`` adds its action statement to the alert, ``under_investigation`` is shown:
    in every channel (``scanwatch alerts preview``) and in ``findings``; neither silences."""
    db = tmp_path / "h.db"
    store = open_store(f"sqlite:///{db}")
    try:
        old, new = "sha256:" + "a" * 64, "sha256:" + "c" * 64
        store.record_inventory(REG, [artifact(old, "1.0")], at(0))
        store.record_scan(success(old, [LIBC_4802], at(0)), at(0))
        store.record_inventory(REG, [artifact(old, "1.0"), artifact(new, "2.0")], at(1))
        store.record_scan(success(new, [LIBC_4802, LIBC_8058], at(1)), at(1))
    finally:
        store.close()
    doc = tmp_path / "v.json"
    doc.write_text(json.dumps(openvex([
        {"vulnerability": "CVE-2025-8058", "products": ["payments/api"],
         "status": "affected", "action_statement": "Upgrade libc6; until then no regcomp"},
        {"vulnerability": "CVE-2025-4802", "products": ["payments/*"],
         "status": "under_investigation"}])))
    config = write_config(tmp_path, db, f"""\
[[vex]]
name = "v"
path = "{doc}"

[[receiver]]
name = "hook"
urls = ["json://127.0.0.1:9/hook"]

[[receiver]]
name = "slack"
urls = ["slack://T000/B000/XXXX/#security"]

[[receiver]]
name = "mail"
urls = ["mailto://scanwatch@127.0.0.1:9?to=secops@example.org"]

[[route]]
receivers = ["hook", "slack", "mail"]
min_severity = "Low"
events = ["new"]
""")
    # One preview renders each receiver's message in its own form: JSON, Slack, email.
    proc = subprocess.run([SCANWATCH, "alerts", "preview", "--since", "3650d", "--config",
                           str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    forms = proc.stdout.split("=== to ")
    texts = {name: next(f for f in forms if f.startswith(name)) for name in
             ("hook", "slack", "mail")}
    proc = subprocess.run([SCANWATCH, "alerts", "preview", "--since", "3650d", "--format",
                           "json", "--config", str(config)], capture_output=True, text=True,
                          timeout=60)
    [doc_json] = [d for d in json.loads(proc.stdout) if d["receiver"] == "hook"]
    notes = {v["id"]: v["vex"] for a in doc_json["fix_now"] for v in a["vulnerabilities"]}
    assert notes == {"CVE-2025-8058": "VEX affected: Upgrade libc6; until then no regcomp"}
    for receiver, text in texts.items():
        assert "Upgrade libc6; until then no regcomp" in text, receiver
    proc = subprocess.run([SCANWATCH, "findings", "--format", "json", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    rows = {r["vulnerability"]: r["vex"] for r in json.loads(proc.stdout)}
    assert rows == {"CVE-2025-8058": "VEX affected: Upgrade libc6; until then no regcomp",
                    "CVE-2025-4802": "VEX under_investigation"}
