"""The partial lineage of ``findings --by action`` (``store/lineage.view_of``) attributes as
the whole registry's does also where two newer tags of the base's repository are equally new
(``2.0`` and ``2.0.0`` are one version): the rebuild offered must not depend on the order in
which the images were read. Real Trivy reports (debian-buster for the base and the image built
on it, alpine-310 for the newer base tags), on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from daemon.commands import findings_summary
from daemon.commands.report_actions import action_json
from daemon.harbor.reports import load_report_file
from daemon.lineage import Image, Lineage
from daemon.lineage.fetch import advisor
from daemon.model import ScannerInfo, ScanResult, ScanState
from daemon.store.db import open_store
from daemon.store.findings import FindingQuery
from tests.store.store_helpers import PROJECT, REG, artifact, at, ref

APP, OLD, TIE_FIRST, TIE_LAST = "sha256:a0", "sha256:b0", "sha256:b1", "sha256:b2"
ELSEWHERE = "sha256:c0"


def test_equally_new_base_tags_rebuild_on_the_same_one_whole_or_partial(
        url: str, trivy_fixtures: Path) -> None:
    debian = load_report_file(trivy_fixtures / "debian-buster.json.golden")
    alpine = load_report_file(trivy_fixtures / "alpine-310.json.golden")
    npm = load_report_file(trivy_fixtures / "npm.json.golden")
    store = open_store(url)
    try:
        store.record_inventory(REG, [
            artifact(APP, "1.0", repository="app"), artifact(OLD, "1.0", repository="debian"),
            artifact(TIE_FIRST, "2.0", repository="debian"),
            artifact(TIE_LAST, "2.0.0", repository="debian"),
            artifact(ELSEWHERE, "1.0", repository="other")], at(0))
        # The worst rows (the lowest ids) of debian's findings are the app's, of alpine's
        # another repository's: of the two newer base tags, only the one read last among the
        # digests (npm's findings, its own) is an image of a row the plan shows.
        for digest, repository, report in ((APP, "app", debian), (ELSEWHERE, "other", alpine),
                                           (OLD, "debian", debian), (TIE_LAST, "debian", npm),
                                           (TIE_FIRST, "debian", alpine)):
            store.record_scan(ScanResult(
                ref(digest, repository=repository), ScanState.SUCCESS, f"r-{digest}", "manual",
                started_at=at(0), finished_at=at(0), scanner=ScannerInfo("Trivy", "", "0.58"),
                scanner_db_updated_at=at(0), report=report), at(0))
        store.refresh_carriers()
        images = [Image(OLD, PROJECT, "debian"), Image(TIE_FIRST, PROJECT, "debian"),
                  Image(TIE_LAST, PROJECT, "debian"), Image(APP, PROJECT, "app")]
        label = f"{PROJECT}/debian:1.0"
        store.record_lineage(REG, images, at(0), lambda every: {
            i.digest: Lineage(APP, "layers", OLD, label) if i.digest == APP
            else Lineage(i.digest, "unknown") for i in every})
        ours = store.finding_actions(FindingQuery(), rules=None, now=at(1),
                                     lineage=findings_summary.lineage_for(store))
        whole = store.finding_actions(FindingQuery(), rules=None, now=at(1),
                                      lineage=lambda registry, _: advisor(store, registry))
        shown = [action_json(r) for r in ours]
        assert shown == [action_json(r) for r in whole]
        # the lowest digest of the two (the whole registry's pick on SQLite, as before)
        assert {a["rebuild_on"] for a in shown} == {f"{PROJECT}/debian:2.0", None}
    finally:
        store.close()
