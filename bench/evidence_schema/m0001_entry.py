from appliance.storage import execute_all

STATEMENTS = (
    """CREATE TABLE entry (idx INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        subject TEXT NOT NULL, payload_hash BLOB NOT NULL, payload TEXT)""",
    "CREATE INDEX entry_subject ON entry (subject)",
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
