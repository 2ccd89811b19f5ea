"""Turn a finished scan that Harbor shows into a ``ScanResult``: fetch its report or its log once.

- Success: ``GET …/additions/vulnerabilities`` on the artifact itself (an index's one merged
  report carries ``artifact_digests``; children are never fetched one by one), normalised by
  ``reports.parse_harbor_addition``. ``{}`` (still being written) is never "0 vulnerabilities":
  it is re-read a few times, then left for the next run. A report that cannot be parsed is not
  stored either; the scan's log is not fetched for a success.
- Error and Stopped: ``GET …/scan/{report_id}/log``, keeping the last ~4 KB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from daemon import log
from daemon.errors import HarborError, ReportFormatError
from daemon.harbor.client import HarborClient
from daemon.harbor.inbound import off_loop
from daemon.harbor.reports import parse_harbor_addition
from daemon.model import Artifact, ArtifactRef, ScanResult, ScanState

LOG_TAIL = 4096
EMPTY_REPORT_RETRIES = 3

_log = log.get(__name__)


def log_tail(text: str, limit: int = LOG_TAIL) -> str:
    """The last ``limit`` bytes of a job log, cut at a line start where possible."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    tail = data[-limit:].decode("utf-8", errors="ignore")
    newline = tail.find("\n")
    return tail[newline + 1:] if 0 <= newline < len(tail) - 1 else tail


def scanned_with(end: datetime | None, db_updated_at: datetime | None) -> datetime | None:
    """The DB a report was made with, as far as we can tell: the current DB only if the scan
    ended after that DB was published; otherwise unknown (so ``db_updated`` can rescan it)."""
    if end is None or db_updated_at is None or end < db_updated_at:
        return None
    return db_updated_at


class Collector:
    """Fetches what a finished scan left behind, for one registry."""

    def __init__(
        self,
        client: HarborClient,
        *,
        db_times: dict[str, datetime | None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        empty_retry_delay: float = 1.0,
    ) -> None:
        self.client = client
        self.db_times = db_times or {}
        self._sleep = sleep
        self._empty_delay = empty_retry_delay
        self.skipped: list[tuple[str, str]] = []  # (artifact, why) not stored this time
        self.unreadable: list[tuple[ArtifactRef, str, str]] = []  # (artifact, report id, why)

    async def collect(self, artifact: Artifact, trigger: str) -> ScanResult | None:
        """A ScanResult for the artifact's finished overview, or None (nothing safe to store)."""
        overview = artifact.overview
        if overview is None or not overview.state.finished:
            return None
        ref = artifact.ref
        base = {
            "ref": ref, "state": overview.state, "report_id": overview.report_id,
            "trigger": trigger, "started_at": overview.start_time,
            "finished_at": overview.end_time, "scanner": overview.scanner,
            "scanner_db_updated_at": scanned_with(overview.end_time,
                                                  self.db_times.get(ref.project)),
            "tags": tuple(t.name for t in artifact.tags),
        }
        try:
            if overview.state is ScanState.SUCCESS:
                report = await self._report(artifact)
                if report is None:
                    return None
                return ScanResult(report=report, **base)  # type: ignore[arg-type]
            excerpt = await self._log(artifact)
            return ScanResult(log_excerpt=excerpt, **base)  # type: ignore[arg-type]
        except HarborError as exc:
            self._skip(artifact, f"fetch failed: {exc}")
            return None

    async def _report(self, artifact: Artifact) -> object:
        ref = artifact.ref
        for attempt in range(EMPTY_REPORT_RETRIES + 1):
            body = await self.client.vulnerabilities(ref.project, ref.repository, ref.digest)
            try:
                # Normalising a report is milliseconds of Python (more for a large one), and
                # a batch brings a hundred at once: not on the event loop.
                report = await off_loop(parse_harbor_addition, body)
            except ReportFormatError as exc:
                self._skip(artifact, f"unreadable report: {exc}")
                self.unreadable.append((ref, artifact.overview.report_id if artifact.overview
                                        else "", f"unreadable report: {exc}"))
                return None
            if report is not None:
                return report
            if attempt < EMPTY_REPORT_RETRIES:
                await self._sleep(self._empty_delay * (attempt + 1))
        self._skip(artifact, "the report is still empty ({}): left for the next run")
        return None

    async def _log(self, artifact: Artifact) -> str:
        ref, overview = artifact.ref, artifact.overview
        assert overview is not None
        if not overview.report_id:
            return ""
        try:
            text = await self.client.scan_log(ref.project, ref.repository, ref.digest,
                                              overview.report_id)
        except HarborError as exc:
            if exc.status == 404:
                return ""
            raise
        return log_tail(text)

    def _skip(self, artifact: Artifact, why: str) -> None:
        self.skipped.append((str(artifact.ref), why))
        _log.warning("report_not_stored", artifact=str(artifact.ref), reason=why)
