"""Schema 1: counter + item, kept consistent by writing both in one transaction."""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    "CREATE TABLE counter (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)",
    "INSERT INTO counter (id, n) VALUES (1, 0)",
    "CREATE TABLE item (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, body TEXT NOT NULL)",
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
