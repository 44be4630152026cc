"""Schema 10: received messages that hit a bug are kept, not lost.

``sync_quarantine``: a message whose checks or handlers raised an unexpected exception (a bug in
this version, not a refusal) is kept with its raw bytes, acknowledged to the broker so it never
blocks what follows, counted, shown by ``dsnode space status`` and tried again when a new version
of dsnode runs (``code_version`` is the version that last failed on it). One row per message
(``digest``: SHA-256 of the topic and the payload)."""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    """CREATE TABLE sync_quarantine (
        id INTEGER PRIMARY KEY,
        space_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        retained INTEGER NOT NULL,
        received TEXT NOT NULL,
        stage TEXT NOT NULL CHECK (stage IN ('inspect', 'apply')),
        error TEXT NOT NULL,
        code_version TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 1,
        UNIQUE (space_id, digest)
    );""",
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
