"""Schema 2: notes, looked up by key."""


def migrate(conn) -> None:
    conn.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, text TEXT NOT NULL)")
    conn.execute("CREATE INDEX note_text ON note (text)")
