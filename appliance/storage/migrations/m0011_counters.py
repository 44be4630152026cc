"""Schema 11: the running node's counters outlive it.

``node_counter``: per space, messages sent, received and dropped by reason (``name`` is ``sent``,
``received`` or ``dropped:<reason>``), written by the running node every few seconds and when it
stops, so that `dsnode space status` on a stopped node still shows recent figures. ``updated`` is
when the running node last wrote them."""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    """CREATE TABLE node_counter (
        space_id TEXT NOT NULL,
        name TEXT NOT NULL,
        value INTEGER NOT NULL CHECK (value >= 0),
        updated TEXT NOT NULL,
        PRIMARY KEY (space_id, name)
    );""",
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
