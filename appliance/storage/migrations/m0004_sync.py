"""Schema 4: space sync. Spaces this node belongs to (with their broker credentials: the store is
encrypted), the outbox written with each state change, the inbox that deduplicates what arrived,
sequence streams both ways, retained state per topic, peers, and the cached space catalog."""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    """
    CREATE TABLE sync_space (
        space_id     TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        operator_did TEXT NOT NULL,
        broker_host  TEXT NOT NULL,
        broker_port  INTEGER NOT NULL,
        tls_ca_pem   TEXT,
        tls_cert_pem TEXT,
        tls_key_pem  TEXT,
        username     TEXT NOT NULL,
        password     TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('joining', 'member', 'revoked', 'left', 'operator')),
        credential   TEXT,               -- the MembershipCredential (JSON) once admitted
        added        TEXT NOT NULL,
        updated      TEXT NOT NULL,
        last_sync    TEXT,
        card_hash    TEXT                -- sha256 of the node card last queued for this space
    );
    """,
    """
    -- Save before you send: a row per message, written in the transaction of the state change.
    CREATE TABLE sync_outbox (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,  -- publishing order
        space_id TEXT NOT NULL,
        topic    TEXT NOT NULL,          -- relative to tds/v1/{space}/
        msg_id   TEXT,                   -- NULL for a retained clear
        type     TEXT,
        stream   TEXT NOT NULL,
        seq      INTEGER,
        retained INTEGER NOT NULL,
        payload  BLOB NOT NULL,          -- the signed envelope, exactly as published
        created  TEXT NOT NULL,
        sent     TEXT,                   -- when the broker acknowledged it; NULL = queued
        error    TEXT                    -- the broker refused it (reason), not retried
    );
    """,
    "CREATE INDEX sync_outbox_queued ON sync_outbox (space_id, id) WHERE sent IS NULL;",
    "CREATE INDEX sync_outbox_stream ON sync_outbox (space_id, stream, seq);",
    "CREATE INDEX sync_outbox_sent ON sync_outbox (sent) WHERE sent IS NOT NULL;",
    """
    CREATE TABLE sync_stream_out (
        space_id  TEXT NOT NULL,
        stream    TEXT NOT NULL,
        floor_seq INTEGER NOT NULL DEFAULT 0,  -- seqs up to here were used (rows purged, or not in the outbox)
        confirmed INTEGER NOT NULL DEFAULT 0,  -- the recipient confirmed every seq up to this one
        PRIMARY KEY (space_id, stream)
    ) WITHOUT ROWID;
    """,
    """
    -- Every applied (or refused) stream message, by id, for the dedup window.
    CREATE TABLE sync_inbox (
        space_id TEXT NOT NULL,
        msg_id   TEXT NOT NULL,
        sender   TEXT NOT NULL,
        type     TEXT NOT NULL,
        received TEXT NOT NULL,
        outcome  TEXT NOT NULL,          -- applied, rejected, failed
        PRIMARY KEY (space_id, msg_id)
    ) WITHOUT ROWID;
    """,
    "CREATE INDEX sync_inbox_received ON sync_inbox (received);",
    """
    CREATE TABLE sync_stream_in (
        space_id   TEXT NOT NULL,
        sender     TEXT NOT NULL,
        stream     TEXT NOT NULL,
        contiguous INTEGER NOT NULL,     -- every seq up to this one arrived
        above      TEXT NOT NULL,        -- JSON list of seqs that arrived above a gap
        attempts   INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (space_id, sender, stream)
    ) WITHOUT ROWID;
    """,
    """
    -- The latest retained message applied per topic (state, not streams).
    CREATE TABLE sync_state (
        space_id TEXT NOT NULL,
        topic    TEXT NOT NULL,
        sender   TEXT NOT NULL,
        msg_id   TEXT,
        seq      INTEGER NOT NULL,
        ts       TEXT NOT NULL,
        cleared  INTEGER NOT NULL DEFAULT 0,
        updated  TEXT NOT NULL,
        PRIMARY KEY (space_id, topic)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE sync_peer (
        space_id    TEXT NOT NULL,
        did         TEXT NOT NULL,
        name        TEXT NOT NULL DEFAULT '',
        org         TEXT NOT NULL DEFAULT '',
        card        TEXT,                -- the node card body (JSON)
        keys        TEXT,                -- its verified key chain (JSON list of key records)
        presence    TEXT,                -- online / offline
        presence_ts TEXT,
        updated     TEXT NOT NULL,
        PRIMARY KEY (space_id, did)
    ) WITHOUT ROWID;
    """,
    """
    -- Other nodes' retained catalog entries, searchable offline.
    CREATE TABLE space_catalog (
        space_id   TEXT NOT NULL,
        provider   TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        entry      TEXT NOT NULL,        -- the entry body (JSON, UTF-8 text so LIKE finds Chinese)
        msg_id     TEXT NOT NULL,
        updated    TEXT NOT NULL,
        PRIMARY KEY (space_id, provider, dataset_id)
    ) WITHOUT ROWID;
    """,
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
