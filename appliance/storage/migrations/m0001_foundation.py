"""Schema 1: node identity, key history, settings, and the evidence log with its Merkle tree."""

STATEMENTS = (
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE node (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        did     TEXT NOT NULL,          -- inception did:key: the node id, stable across key rotation
        name    TEXT NOT NULL,
        org     TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL
    );
    """,
    """
    -- Every signing key the node ever had. The private seed is erased when a key is retired; the
    -- public key stays so old evidence keeps verifying.
    CREATE TABLE identity_key (
        seq        INTEGER PRIMARY KEY,  -- 0 = inception key
        did        TEXT NOT NULL UNIQUE, -- did:key of this key (the envelope `kid`)
        public_key BLOB NOT NULL,
        seed       BLOB,
        created    TEXT NOT NULL,
        retired    TEXT,
        statement  TEXT                  -- signed rotation statement (JSON), NULL for the inception key
    );
    """,
    """
    CREATE TABLE evidence_entry (
        idx          INTEGER PRIMARY KEY,
        ts           TEXT NOT NULL,
        actor        TEXT NOT NULL,
        action       TEXT NOT NULL,
        subject      TEXT NOT NULL,
        payload_hash BLOB NOT NULL,
        payload      TEXT,
        -- the tree hashes this append wrote: its leaf hash, then one hash per subtree it completed
        -- (RFC 6962 stored-hash layout; stored hash s lives in the row of the leaf that wrote it)
        hashes       BLOB NOT NULL
    );
    """,
    """
    CREATE INDEX evidence_entry_subject ON evidence_entry (subject);
    """,
    """
    CREATE TABLE evidence_checkpoint (
        size    INTEGER PRIMARY KEY,
        root    BLOB NOT NULL,
        note    TEXT NOT NULL,           -- C2SP signed note
        created TEXT NOT NULL
    );
    """,
    """
    CREATE TRIGGER evidence_entry_append_only_update BEFORE UPDATE ON evidence_entry
    BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
    """,
    """
    CREATE TRIGGER evidence_entry_append_only_delete BEFORE DELETE ON evidence_entry
    BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
    """,
)


def migrate(conn) -> None:
    for statement in STATEMENTS:
        conn.execute(statement)
