"""Schema 5: the space operator role (its space, invitations, admissions, members, revocation lists,
listing reviews, filed agreements, witnessed checkpoints, alerts) and the member side of governance
(witnessed checkpoints of this node's log, listing requests, revocation lists, filing receipts,
contract templates). Every store has both halves; only an operator's store fills the first."""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    """
    CREATE TABLE operator_space (
        id                INTEGER PRIMARY KEY CHECK (id = 1),
        space_id          TEXT NOT NULL,
        name              TEXT NOT NULL,
        policies          TEXT NOT NULL,     -- JSON: auto_admit, credential_days, invitation_days
        broker_host       TEXT NOT NULL,
        broker_port       INTEGER NOT NULL,
        tls_ca_pem        TEXT,
        broker_mode       TEXT NOT NULL CHECK (broker_mode IN ('dynsec', 'password-file')),
        broker_dir        TEXT,              -- where broker-config wrote its files (password-file mode)
        operator_password TEXT NOT NULL,     -- the operator's own MQTT account
        admin_password    TEXT NOT NULL,     -- the dynamic-security admin account
        revocation_seq    INTEGER NOT NULL DEFAULT 0,
        created           TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE operator_invitation (
        token_id      TEXT PRIMARY KEY,
        secret_hash   TEXT NOT NULL,         -- SHA-256 of the one-time secret; the secret is not kept
        join_password TEXT NOT NULL,         -- the join account's password (until the token is used)
        org           TEXT NOT NULL DEFAULT '',
        issued        TEXT NOT NULL,
        expires       TEXT NOT NULL,
        used          TEXT,                  -- when it was redeemed (admitted, queued or rejected)
        used_by       TEXT,
        account       TEXT NOT NULL DEFAULT 'wanted'  -- broker join account: wanted, present, removed
    );
    """,
    """
    CREATE TABLE operator_admission (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        token_id  TEXT NOT NULL UNIQUE,
        node_did  TEXT NOT NULL,
        name      TEXT NOT NULL,
        org       TEXT NOT NULL DEFAULT '',
        card      TEXT,
        status    TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'admitted', 'rejected')),
        reason    TEXT,
        requested TEXT NOT NULL,
        decided   TEXT
    );
    """,
    """
    CREATE TABLE operator_member (
        did          TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        org          TEXT NOT NULL DEFAULT '',
        status       TEXT NOT NULL CHECK (status IN ('member', 'revoked', 'left')),
        password     TEXT NOT NULL,          -- its MQTT password, so the account can be recreated
        credential   TEXT NOT NULL,
        member_since TEXT NOT NULL,
        ended        TEXT,
        reason       TEXT,
        account      TEXT NOT NULL DEFAULT 'wanted'  -- broker account: wanted, present, removed
    );
    """,
    """
    CREATE TABLE operator_revocation_list (
        seq       INTEGER PRIMARY KEY,
        statement TEXT NOT NULL,
        created   TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE operator_listing (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        provider   TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        entry      TEXT NOT NULL,            -- catalog entry: DCAT dataset + ODRL offers (JSON)
        pricing    TEXT,
        compliance TEXT,
        status     TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
        reason     TEXT,
        approval   TEXT,
        requested  TEXT NOT NULL,
        decided    TEXT
    );
    """,
    "CREATE INDEX operator_listing_dataset ON operator_listing (provider, dataset_id);",
    """
    CREATE TABLE operator_filing (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        agreement_sha256 TEXT NOT NULL,
        filed_by         TEXT NOT NULL,
        agreement        TEXT NOT NULL,
        receipt          TEXT NOT NULL,
        filed            TEXT NOT NULL,
        UNIQUE (agreement_sha256, filed_by)
    );
    """,
    """
    CREATE TABLE operator_witness (
        node_did     TEXT PRIMARY KEY,
        size         INTEGER NOT NULL,
        root         BLOB NOT NULL,
        note         TEXT NOT NULL,          -- the node's latest checkpoint we accepted
        cosigned     TEXT NOT NULL,          -- the same with our witness signature
        keys         TEXT,                   -- the node's key chain (JSON) as last presented
        pending_note TEXT,                   -- a newer checkpoint waiting for its consistency proof
        updated      TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE operator_alert (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        node_did TEXT NOT NULL,
        kind     TEXT NOT NULL,              -- rewritten, shrunk, bad_proof
        detail   TEXT NOT NULL,
        evidence TEXT NOT NULL,              -- JSON: the notes and proof that show it
        raised   TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE witnessed_checkpoint (
        space_id TEXT NOT NULL,
        size     INTEGER NOT NULL,
        note     TEXT NOT NULL,              -- our checkpoint co-signed by the space operator
        received TEXT NOT NULL,
        PRIMARY KEY (space_id, size)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE membership_listing (
        space_id   TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        status     TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'rejected', 'withdrawn')),
        entry      TEXT NOT NULL,
        version    INTEGER,                 -- the product version asked for (catalog products)
        approval   TEXT,
        reason     TEXT,
        updated    TEXT NOT NULL,
        PRIMARY KEY (space_id, dataset_id)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE membership_revocation (
        space_id  TEXT PRIMARY KEY,
        seq       INTEGER NOT NULL,
        statement TEXT NOT NULL,
        updated   TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE membership_filing (
        space_id         TEXT NOT NULL,
        agreement_sha256 TEXT NOT NULL,
        receipt          TEXT,               -- NULL until the operator's receipt arrives
        sent             TEXT NOT NULL,
        filed            TEXT,
        PRIMARY KEY (space_id, agreement_sha256)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE membership_template (
        space_id    TEXT NOT NULL,
        template_id TEXT NOT NULL,
        template    TEXT NOT NULL,
        updated     TEXT NOT NULL,
        PRIMARY KEY (space_id, template_id)
    ) WITHOUT ROWID;
    """,
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
