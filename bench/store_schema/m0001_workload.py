"""Records shaped like the node's catalog rows, plus an append-only event table."""

from appliance.storage import execute_all

STATEMENTS = (
    """CREATE TABLE record (
        id INTEGER PRIMARY KEY, urn TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, title TEXT NOT NULL,
        owner TEXT NOT NULL, size INTEGER NOT NULL, sha256 BLOB NOT NULL, meta TEXT NOT NULL,
        updated TEXT NOT NULL)""",
    "CREATE INDEX record_kind_updated ON record (kind, updated)",
    """CREATE TABLE event (
        id INTEGER PRIMARY KEY, record_id INTEGER NOT NULL REFERENCES record (id), action TEXT NOT NULL,
        ts TEXT NOT NULL)""",
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
