"""Version 23: ``carrier_summary`` and ``carrier_dirty``, each finding's carriers summarised
once and kept in step by triggers (``store/carrier_summary.py``), so that a listing reads one
row per finding instead of one per image carrying it (issue 11).

The triggers mark a repository (bump its ``carrier_dirty`` counter) in the transaction of any
change to what its summaries are made of: an artifact inserted or deleted while counting, its
content, counting flag, repository or digest changed; a tag opened, closed, moved or deleted; a
finding row inserted (summaries are keyed by finding id; a deleted finding's goes with it).
Every repository is built here once (a batch of repositories at a time, through the live
module, as migration 10 filled ``content_finding``).
"""

from __future__ import annotations

import contextlib

from sqlalchemy import Column, Float, Integer, MetaData, String, Table
from sqlalchemy.engine import Connection

VERSION = 23
DESCRIPTION = "each finding's carriers summarised, kept in step by triggers"

_MARK = ("INSERT INTO carrier_dirty (repository_id, version) VALUES ({0}.repository_id, 1)"
                " ON CONFLICT (repository_id) DO UPDATE SET version = carrier_dirty.version + 1;")
_SQLITE = (
    "CREATE TRIGGER carrier_artifact_insert AFTER INSERT ON artifact WHEN NEW.counting"
    " BEGIN {new} END",
    "CREATE TRIGGER carrier_artifact_update AFTER UPDATE OF content_id, counting,"
    " repository_id, digest ON artifact WHEN (OLD.counting OR NEW.counting) AND ("
    "OLD.content_id IS NOT NEW.content_id OR OLD.counting IS NOT NEW.counting"
    " OR OLD.repository_id IS NOT NEW.repository_id OR OLD.digest IS NOT NEW.digest)"
    " BEGIN {old} {new} END",
    "CREATE TRIGGER carrier_artifact_delete AFTER DELETE ON artifact WHEN OLD.counting"
    " BEGIN {old} END",
    "CREATE TRIGGER carrier_tag_insert AFTER INSERT ON tag WHEN NEW.until IS NULL"
    " BEGIN {new} END",
    "CREATE TRIGGER carrier_tag_update AFTER UPDATE OF until, artifact_id, name, repository_id"
    " ON tag WHEN OLD.until IS NULL OR NEW.until IS NULL BEGIN {old} {new} END",
    "CREATE TRIGGER carrier_tag_delete AFTER DELETE ON tag WHEN OLD.until IS NULL"
    " BEGIN {old} END",
    # summaries are keyed by finding id: a new finding row is read from its carriers until
    # rebuilt, a deleted one takes its summary along (its id may be given again)
    "CREATE TRIGGER carrier_finding_insert AFTER INSERT ON finding BEGIN {new} END",
    "CREATE TRIGGER carrier_finding_delete AFTER DELETE ON finding"
    " BEGIN DELETE FROM carrier_summary WHERE finding_id = OLD.id; END",
)
# PostgreSQL: one function per table, fired for each row changed (the same conditions).
_PG_FUNCTION = """
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND ({old_when}) THEN {old} END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') AND ({new_when}) THEN {new} END IF;
  RETURN NULL;
END $$"""
_PG = (
    _PG_FUNCTION.format(
        name="carrier_mark_artifact", old=_MARK.format("OLD"), new=_MARK.format("NEW"),
        old_when="TG_OP = 'DELETE' AND OLD.counting OR TG_OP = 'UPDATE' AND"
                 " (OLD.counting OR NEW.counting) AND (OLD.content_id IS DISTINCT FROM"
                 " NEW.content_id OR OLD.counting IS DISTINCT FROM NEW.counting"
                 " OR OLD.repository_id IS DISTINCT FROM NEW.repository_id"
                 " OR OLD.digest IS DISTINCT FROM NEW.digest)",
        new_when="TG_OP = 'INSERT' AND NEW.counting OR TG_OP = 'UPDATE' AND"
                 " (OLD.counting OR NEW.counting) AND (OLD.content_id IS DISTINCT FROM"
                 " NEW.content_id OR OLD.counting IS DISTINCT FROM NEW.counting"
                 " OR OLD.repository_id IS DISTINCT FROM NEW.repository_id"
                 " OR OLD.digest IS DISTINCT FROM NEW.digest)"),
    "CREATE TRIGGER carrier_artifact AFTER INSERT OR DELETE OR UPDATE OF content_id, counting,"
    " repository_id, digest ON artifact FOR EACH ROW EXECUTE FUNCTION carrier_mark_artifact()",
    _PG_FUNCTION.format(
        name="carrier_mark_tag", old=_MARK.format("OLD"), new=_MARK.format("NEW"),
        old_when="TG_OP = 'DELETE' AND OLD.until IS NULL OR TG_OP = 'UPDATE' AND"
                 " (OLD.until IS NULL OR NEW.until IS NULL)",
        new_when="TG_OP = 'INSERT' AND NEW.until IS NULL OR TG_OP = 'UPDATE' AND"
                 " (OLD.until IS NULL OR NEW.until IS NULL)"),
    "CREATE TRIGGER carrier_tag AFTER INSERT OR DELETE OR UPDATE OF until, artifact_id, name,"
    " repository_id ON tag FOR EACH ROW EXECUTE FUNCTION carrier_mark_tag()",
    _PG_FUNCTION.format(
        name="carrier_mark_finding", old="DELETE FROM carrier_summary WHERE finding_id = OLD.id;",
        new=_MARK.format("NEW"), old_when="TG_OP = 'DELETE'", new_when="TG_OP = 'INSERT'"),
    "CREATE TRIGGER carrier_finding AFTER INSERT OR DELETE ON finding FOR EACH ROW"
    " EXECUTE FUNCTION carrier_mark_finding()",
)


def upgrade(conn: Connection) -> None:
    from daemon.store import carrier_summary

    md = MetaData()
    Table(
        "carrier_summary", md,
        Column("finding_id", Integer(), primary_key=True, autoincrement=False),
        Column("repository_id", Integer(), nullable=False),
        Column("fix", String(), nullable=False),
        Column("carriers", String(), nullable=False),
        Column("tags", String(), nullable=False),
        Column("ecosystem", String(), nullable=False),
        Column("cvss_v3", Float(), nullable=True),
        Column("cvss_vector", String(), nullable=False),
    ).create(conn)
    Table(
        "carrier_dirty", md,
        Column("repository_id", Integer(), primary_key=True, autoincrement=False),
        Column("version", Integer(), nullable=False),
    ).create(conn)
    if conn.dialect.name == "postgresql":
        for statement in _PG:
            conn.exec_driver_sql(statement)
    else:
        for statement in _SQLITE:
            conn.exec_driver_sql(statement.format(old=_MARK.format("OLD"),
                                                  new=_MARK.format("NEW")))
    conn.exec_driver_sql(
        "CREATE INDEX ix_carrier_summary_repository_id ON carrier_summary (repository_id)")
    conn.exec_driver_sql("INSERT INTO carrier_dirty (repository_id, version)"
                         " SELECT DISTINCT repository_id, 1 FROM artifact WHERE counting")
    carrier_summary.refresh(lambda: contextlib.nullcontext(conn))
