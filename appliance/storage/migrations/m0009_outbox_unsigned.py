"""Schema 9: outbox rows are signed when they are published.

``sync_outbox.sign_at``: for a row written by schema 9 and later, ``payload`` is the canonical
envelope without ``kid`` and ``sig`` and ``sign_at`` is the offset where the sending thread puts
them in (``codec.sign_stored``), so the signature is no longer computed inside the writer's
transaction. NULL: ``payload`` is exactly what is published (rows written before, retained clears)."""

from appliance.storage.migrate import execute_all

STATEMENTS = ("ALTER TABLE sync_outbox ADD COLUMN sign_at INTEGER;",)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
