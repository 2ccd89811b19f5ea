"""Prometheus metrics of the daemon, in a registry of their own (no process-global state)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("scanwatch_runs", "Schedule runs, by result", ["schedule", "result"],
                            registry=r)
        self.scans_triggered = Counter("scanwatch_scans_triggered", "Scans triggered",
                                       ["registry"], registry=r)
        self.scans_finished = Counter("scanwatch_scans_finished", "Scans followed to their end",
                                      ["registry", "outcome"], registry=r)
        self.api_calls = Counter("scanwatch_api_calls", "Harbor API calls", ["registry"],
                                 registry=r)
        self.api_errors = Counter("scanwatch_api_errors", "Harbor API calls that failed",
                                  ["registry"], registry=r)
        self.reports_unreadable = Counter("scanwatch_reports_unreadable",
                                          "Reports set aside: unreadable, or not storable",
                                          ["registry"], registry=r)
        self.queue_depth = Gauge("scanwatch_queue_depth", "Scans waiting or in flight",
                                 ["registry"], registry=r)
        self.open_findings = Gauge("scanwatch_open_findings", "Open findings by severity",
                                   ["severity"], registry=r)
        self.alerts_sent = Counter("scanwatch_alerts_sent", "Alert messages delivered",
                                   ["receiver"], registry=r)
        self.alerts_dead = Counter("scanwatch_alerts_dead_lettered",
                                   "Alert messages given up after their max age", ["receiver"],
                                   registry=r)
        self.last_success = Gauge("scanwatch_last_successful_run_timestamp_seconds",
                                  "When each schedule last finished a run successfully",
                                  ["schedule"], registry=r)
        self.scanner_db_age = Gauge("scanwatch_scanner_db_age_seconds",
                                    "Age of the scanner's vulnerability database",
                                    ["registry"], registry=r)
        self.feed_age = Gauge("scanwatch_feed_age_seconds",
                              "Age of each intel feed's last good copy (KEV, EPSS)",
                              ["feed"], registry=r)
        # Several instances on PostgreSQL (issue 19)
        self.lease_held = Gauge("scanwatch_lease_held", "1 while this instance holds the unit",
                                ["unit"], registry=r)
        self.lease_epoch = Gauge("scanwatch_lease_epoch", "The epoch this instance holds it at",
                                 ["unit"], registry=r)
        self.cluster_instances = Gauge("scanwatch_cluster_instances",
                                       "Instances with a recent heartbeat", registry=r)
        self.behind_db = Gauge("scanwatch_reports_behind_db_ratio",
                               "Share of images whose report is older than the scanner DB",
                               ["registry"], registry=r)
        self.oldest_behind = Gauge("scanwatch_oldest_report_behind_db_age_seconds",
                                   "Age of the oldest report older than the scanner DB "
                                   "(0: none)", ["registry"], registry=r)
        self.rescan_budget = Gauge("scanwatch_rescan_budget_scans",
                                   "Scans the last run could start (the trickle's budget)",
                                   ["registry"], registry=r)
        self.cover_seconds = Gauge("scanwatch_rescan_cover_seconds",
                                   "Time to rescan every image behind the DB at this budget",
                                   ["registry"], registry=r)

    def observe_coverage(self, reg: Any, now: datetime) -> None:
        """The rescan trickle's coverage after a run (``RegistryRun`` fields)."""
        name = reg.registry
        self.behind_db.labels(name).set(reg.behind_db / reg.images if reg.images else 0.0)
        oldest = reg.oldest_behind
        self.oldest_behind.labels(name).set(
            max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
        self.rescan_budget.labels(name).set(reg.budget)
        self.cover_seconds.labels(name).set(reg.cover_seconds)
