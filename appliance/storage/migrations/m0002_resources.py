"""Schema 2: data resources of the catalog, their versions, and the encrypted vault's objects.

The column names of ``resource`` and ``resource_version`` are a contract: product search
triggers and lineage (m0003) refer to them. Add columns; do not rename these.
"""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    """
    CREATE TABLE resource (
        id                    TEXT PRIMARY KEY,          -- 'urn:dsnode:resource:<uuid4>'
        kind                  TEXT NOT NULL,             -- file | folder | table | sqlite_table | api
        mode                  TEXT NOT NULL,             -- referenced | hosted
        title                 TEXT NOT NULL,
        description           TEXT NOT NULL DEFAULT '',
        keywords              TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
        domain                TEXT NOT NULL DEFAULT '',
        owner                 TEXT NOT NULL DEFAULT '',
        update_frequency      TEXT NOT NULL DEFAULT '',
        category              TEXT NOT NULL DEFAULT 'general', -- GB/T 43697-2024: general | important | core
        sensitivity           INTEGER,                   -- provider-set level 1..4 (NULL = not graded yet)
        suggested_sensitivity INTEGER,                   -- what detection suggests
        current_version       INTEGER NOT NULL,
        created               TEXT NOT NULL,
        updated               TEXT NOT NULL,
        removed               TEXT,
        source                TEXT NOT NULL,             -- resolved path (+ '#table'), or the URL
        masking               TEXT NOT NULL DEFAULT '[]', -- JSON array of masking rules
        options               TEXT NOT NULL DEFAULT '{}'  -- JSON: how it was read (path, table, patterns, ...)
    );
    """,
    "CREATE INDEX resource_source ON resource (source);",
    """
    CREATE TABLE resource_version (
        resource_id  TEXT NOT NULL REFERENCES resource(id),
        version      INTEGER NOT NULL,
        created      TEXT NOT NULL,
        source       TEXT NOT NULL,                      -- path or URL
        size         INTEGER NOT NULL,
        sha256       TEXT NOT NULL,                      -- hex
        row_count    INTEGER,
        columns      TEXT NOT NULL DEFAULT '[]',         -- JSON [{"name","type","sensitive",...}]
        format       TEXT NOT NULL DEFAULT '',           -- csv | tsv | json | jsonl | xlsx | sqlite | binary | ...
        encoding     TEXT,
        time_range   TEXT,                               -- JSON {"column","min","max"}
        samples      TEXT NOT NULL DEFAULT '[]',         -- JSON rows, masked
        quality      TEXT,                               -- JSON quality report
        sensitive    TEXT NOT NULL DEFAULT '[]',         -- JSON detection report (counts, never values)
        skipped      TEXT NOT NULL DEFAULT '{}',         -- JSON: what was skipped and why
        files        TEXT NOT NULL DEFAULT '[]',         -- JSON, folders: [{"path","size","sha256","object"}]
        vault_object TEXT,                               -- hosted single-object content
        mtime_ns     INTEGER,                            -- of the source when it was read
        PRIMARY KEY (resource_id, version)
    );
    """,
    """
    -- Encrypted payloads in the store's vault/ folder: one secretstream file per object. The
    -- object key is random and kept here wrapped (XSalsa20-Poly1305) with the store's vault subkey.
    CREATE TABLE vault_object (
        id       TEXT PRIMARY KEY,                       -- 32 hex characters, also the file name
        wrapped  BLOB NOT NULL,
        size     INTEGER NOT NULL,                       -- plaintext bytes
        sha256   TEXT NOT NULL,                          -- of the plaintext
        created  TEXT NOT NULL
    );
    """,
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
