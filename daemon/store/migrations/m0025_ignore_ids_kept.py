"""Version 25: an ignore rule's id is never given to another rule (SQLite ``AUTOINCREMENT``).

History, `findings` and alerts name a rule added with `scanwatch ignore add` by its id
("… (ignore #3 by alice, until …)"). SQLite gives a plain ``INTEGER PRIMARY KEY`` the largest
id plus one, so removing the newest rule and adding another gave the new rule the removed
one's id, and the history written under the old rule then named the new one. The table is
rebuilt with ``AUTOINCREMENT`` (ids only grow, ``sqlite_sequence`` remembers the highest ever
given), keeping its rows. PostgreSQL's sequence never gives an id twice: nothing to do there.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

VERSION = 25
DESCRIPTION = "ignore rule ids never reused"

_COLUMNS = ("id, vulnerability, package, registries, projects, repositories, reason, expires, "
            "created_by, created_at")


def upgrade(conn: Connection) -> None:
    if conn.dialect.name != "sqlite":
        return
    # Python's sqlite3 opens the transaction at the INSERT, so an attempt that failed after the
    # CREATE left its new table behind (the rest rolled back): start from none.
    conn.exec_driver_sql("DROP TABLE IF EXISTS ignore_rule_new")
    conn.exec_driver_sql(
        "CREATE TABLE ignore_rule_new ("
        "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, vulnerability VARCHAR NOT NULL, "
        "package VARCHAR NOT NULL, registries VARCHAR NOT NULL, projects VARCHAR NOT NULL, "
        "repositories VARCHAR NOT NULL, reason VARCHAR NOT NULL, expires DATE NOT NULL, "
        "created_by VARCHAR NOT NULL, created_at DATETIME NOT NULL)")
    conn.exec_driver_sql(
        f"INSERT INTO ignore_rule_new ({_COLUMNS}) SELECT {_COLUMNS} FROM ignore_rule")
    conn.exec_driver_sql("DROP TABLE ignore_rule")
    conn.exec_driver_sql("ALTER TABLE ignore_rule_new RENAME TO ignore_rule")
