"""Schema 6: contracts. Negotiations (both process ids, this node's role, the peer, the space, the
dataset and the offer on the table), a per-step timeline with reasons, signed agreements, the
provider's auto-approval rules, and data demands published to a space."""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    """
    CREATE TABLE contract_negotiation (
        id           TEXT PRIMARY KEY,        -- this node's process id (consumerPid or providerPid)
        peer_pid     TEXT,                    -- the other side's process id, once known
        role         TEXT NOT NULL CHECK (role IN ('consumer', 'provider')),
        space_id     TEXT NOT NULL,
        peer         TEXT NOT NULL,           -- the other node's did
        dataset_id   TEXT NOT NULL,
        offer        TEXT NOT NULL,           -- the offer on the table (JSON-LD MessageOffer)
        state        TEXT NOT NULL,
        pending      INTEGER NOT NULL DEFAULT 0,  -- 1 while a person on this side must decide
        reason       TEXT NOT NULL DEFAULT '',    -- why it ended TERMINATED
        deadline     TEXT,                    -- when the current step times out (RFC 3339)
        created      TEXT NOT NULL,
        updated      TEXT NOT NULL
    );
    """,
    "CREATE INDEX contract_negotiation_peer ON contract_negotiation (space_id, peer, peer_pid);",
    "CREATE INDEX contract_negotiation_deadline ON contract_negotiation (deadline) WHERE deadline IS NOT NULL;",
    """
    CREATE TABLE contract_step (
        negotiation_id TEXT NOT NULL,
        n              INTEGER NOT NULL,
        ts             TEXT NOT NULL,
        event          TEXT NOT NULL,          -- the DSP message (or timeout / rejected)
        who            TEXT NOT NULL,          -- did of whoever caused the step
        direction      TEXT NOT NULL CHECK (direction IN ('sent', 'received', 'local')),
        state_before   TEXT NOT NULL,
        state_after    TEXT NOT NULL,
        reason         TEXT NOT NULL DEFAULT '',
        message        TEXT,                   -- the DSP message body (JSON), as sent or received
        PRIMARY KEY (negotiation_id, n)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE contract_agreement (
        id              TEXT PRIMARY KEY,      -- the agreement's @id
        negotiation_id  TEXT NOT NULL UNIQUE,
        space_id        TEXT NOT NULL,
        agreement       TEXT NOT NULL,         -- the ODRL Agreement (JSON-LD)
        provider_sig    TEXT NOT NULL,
        consumer_sig    TEXT,
        status          TEXT NOT NULL CHECK (status IN ('agreed', 'active', 'retired')),
        updated         TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE contract_rule (
        id    INTEGER PRIMARY KEY,
        rule  TEXT NOT NULL                    -- auto-approval rule as data (JSON)
    );
    """,
    """
    CREATE TABLE contract_demand (
        id        TEXT PRIMARY KEY,
        space_id  TEXT NOT NULL,
        owner     TEXT NOT NULL,
        demand    TEXT NOT NULL,
        status    TEXT NOT NULL CHECK (status IN ('open', 'withdrawn', 'expired')),
        expires   TEXT,
        updated   TEXT NOT NULL
    );
    """,
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
