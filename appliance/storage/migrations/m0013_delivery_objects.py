"""Schema 13: deliveries of many objects, and pushed transfers (issue 12).

``received_data``: one row per received object, now named: ``name`` is the object's name in the
manifest (a relative path: a file of a delivered folder, a resource of a product of several) and
``part`` its place among the delivery's objects (from 0). A single-object delivery is part 0.

``transfer.mode``: ``pull`` (the consumer fetches from the provider's data channel) or ``push``
(the provider connects to the consumer's data channel and delivers)."""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    "ALTER TABLE received_data ADD COLUMN name TEXT NOT NULL DEFAULT 'data';",
    "ALTER TABLE received_data ADD COLUMN part INTEGER NOT NULL DEFAULT 0;",
    "ALTER TABLE transfer ADD COLUMN mode TEXT NOT NULL DEFAULT 'pull' CHECK (mode IN ('pull', 'push'));",
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
