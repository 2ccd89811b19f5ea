"""An import asks, a batch at a time, which report ids history holds (``known_reports_among``):
only that batch's ids, only the registry's, and with ``upto`` only those stored before the
import began (as the one read of every id at its start saw them: an image in two repositories
shares its report id, and the second is imported all the same)."""

from __future__ import annotations

from pathlib import Path

from daemon.store.db import open_store
from tests.store.store_helpers import REG, artifact, at, success


def test_known_reports_among_a_batch(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'h.db'}") as store:
        assert store.last_scan_id() == 0
        store.record_inventory(REG, [artifact("sha256:a", "1.0"),
                                     artifact("sha256:a", "1.0", repository="web")], at(0))
        store.record_scans([success("sha256:a", ["CVE-1:zlib:1.2"], at(0), report_id="r1"),
                            success("sha256:b", ["CVE-1:zlib:1.2"], at(0), report_id="r2")],
                           at(0))
        before = store.last_scan_id()
        assert before > 0
        assert store.known_reports_among(REG, ["r1", "r2", "r9", ""]) == {"r1", "r2"}
        assert store.known_reports_among("elsewhere", ["r1", "r2"]) == set()
        # The same image in repository "web" brings the same report id, stored after the
        # import began: still not "known" to that import.
        store.record_scans([success("sha256:a", ["CVE-1:zlib:1.2"], at(1), repository="web",
                                    report_id="r3")], at(1))
        assert store.known_reports_among(REG, ["r3"]) == {"r3"}
        assert store.known_reports_among(REG, ["r1", "r3"], before) == {"r1"}
        # Many ids at once: asked in chunks, the answer is whole.
        ids = [f"x{n}" for n in range(1200)] + ["r2"]
        assert store.known_reports_among(REG, ids, before) == {"r2"}
