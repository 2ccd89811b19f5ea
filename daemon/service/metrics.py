"""Prometheus metrics of the daemon, in a registry of their own (no process-global state)."""

from __future__ import annotations

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
