"""Schema 12: data delivery under contract (DSP transfer processes) and the received-data store.

``transfer``: one row per transfer process on this node, as provider or consumer. ``id`` is this
side's process id, ``peer_pid`` the other side's. ``manifest``/``manifest_sig``: what the provider
signed (per-chunk and whole-object SHA-256). ``object_id``: on the provider, the prepared payload
(masked as the agreement requires) in the vault; on the consumer, the received data once complete.
``receipt``/``receipt_sig``: the consumer's signed receipt (both sides keep it).

``transfer_chunk``: on the consumer, the chunks already received and verified, each kept encrypted
in the staging folder until the object is whole, so an interrupted transfer resumes from there.

``transfer_step``: each transfer's timeline (sent, received, refused, local), as negotiation's.

``received_data``: what this node received under agreements. The bytes are vault objects,
encrypted at rest; the node opens them (and later, usage control decides when) — there is no
plain copy on disk. ``deleted`` is set when the data was deleted (a deletion duty, or the user).

``operator_delivery``: at the space operator, the delivery records providers file (the consumer's
signed receipt), one per transfer.
"""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    """CREATE TABLE transfer (
        id TEXT PRIMARY KEY,
        peer_pid TEXT,
        role TEXT NOT NULL CHECK (role IN ('provider', 'consumer')),
        space_id TEXT NOT NULL,
        peer TEXT NOT NULL,
        negotiation_id TEXT NOT NULL,
        agreement_id TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        resource_id TEXT,
        version INTEGER,
        state TEXT NOT NULL,
        path TEXT,
        manifest TEXT,
        manifest_sig TEXT,
        object_id TEXT,
        chunks_done INTEGER NOT NULL DEFAULT 0,
        bytes_done INTEGER NOT NULL DEFAULT 0,
        receipt TEXT,
        receipt_sig TEXT,
        reason TEXT,
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    );""",
    "CREATE INDEX transfer_by_negotiation ON transfer (negotiation_id);",
    "CREATE UNIQUE INDEX transfer_by_peer ON transfer (peer, peer_pid) WHERE peer_pid IS NOT NULL;",
    """CREATE TABLE transfer_chunk (
        transfer_id TEXT NOT NULL REFERENCES transfer (id),
        idx INTEGER NOT NULL,
        PRIMARY KEY (transfer_id, idx)
    );""",
    """CREATE TABLE transfer_step (
        id INTEGER PRIMARY KEY,
        transfer_id TEXT NOT NULL REFERENCES transfer (id),
        ts TEXT NOT NULL,
        event TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('sent', 'received', 'refused', 'local')),
        state_before TEXT NOT NULL,
        state_after TEXT NOT NULL,
        reason TEXT
    );""",
    """CREATE TABLE received_data (
        object_id TEXT PRIMARY KEY,
        transfer_id TEXT NOT NULL REFERENCES transfer (id),
        negotiation_id TEXT NOT NULL,
        agreement_id TEXT NOT NULL,
        provider TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        received TEXT NOT NULL,
        deleted TEXT
    );""",
    """CREATE TABLE operator_delivery (
        transfer_id TEXT NOT NULL,
        provider TEXT NOT NULL,
        consumer TEXT NOT NULL,
        agreement_id TEXT NOT NULL,
        receipt TEXT NOT NULL,
        receipt_sig TEXT NOT NULL,
        filed TEXT NOT NULL,
        PRIMARY KEY (provider, transfer_id)
    );""",
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
