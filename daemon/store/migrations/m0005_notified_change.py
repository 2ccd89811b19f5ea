"""Version 5: the notification log keyed by the change told, not only its kind.

``notification_log.value`` is the changed value of the change a receiver was told (the fix
version of a ``fix_available``, the new severity of a ``severity_up``/``severity_down``, "" for
the others), so the same change of the same finding reaches a receiver once however many images
or runs report it (``alerts/dedup.py``). Rows written before are filled from the finding as it
stands now: the change they told is the one it shows, or was superseded by one told later.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

VERSION = 5
DESCRIPTION = "notification log keyed by the changed value"

# Severity labels as ``daemon.model.Severity`` stores them (ints in ``finding.severity``).
_LABELS = {0: "None", 1: "Unknown", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}


def upgrade(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE notification_log ADD COLUMN value VARCHAR NOT NULL DEFAULT ''"))
    conn.execute(text(
        "UPDATE notification_log SET value = (SELECT fix_version FROM finding "
        "WHERE finding.id = notification_log.finding_id) WHERE kind = 'fix_available'"))
    label = " ".join(f"WHEN {n} THEN '{name}'" for n, name in _LABELS.items())
    conn.execute(text(
        f"UPDATE notification_log SET value = (SELECT CASE severity {label} ELSE '' END "
        "FROM finding WHERE finding.id = notification_log.finding_id) "
        "WHERE kind IN ('severity_up', 'severity_down')"))
    conn.execute(text("CREATE INDEX ix_notified_value ON notification_log "
                      "(receiver, finding_id, kind, value)"))
