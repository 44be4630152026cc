"""The node's identity: its did:key, its name, and the keys it signs with."""

from __future__ import annotations

import json
import logging
import threading

from appliance.clock import Clock, rfc3339
from appliance.crypto.keys import SigningKey
from appliance.domain.evidence import Action
from appliance.crypto.key_chain import KeyRecord, rotation_statement
from appliance.errors import IdentityError, LocalText
from appliance.events import EventBus
from appliance.services.evidence import EvidenceLog
from appliance.storage.database import Database

log = logging.getLogger(__name__)


class KeyRing:
    """The key history in the store; hands out the current signing key."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._current: tuple[int, SigningKey] | None = None
        self._on_retire: list = []
        row = db.read(lambda c: c.execute("SELECT did, name, org, created FROM node WHERE id = 1").fetchone())
        if row is None:
            raise IdentityError(LocalText("identity.reason.no_identity"))
        self.node_did, self.name, self.org, self.created = row

    @staticmethod
    def create(conn, *, name: str, org: str, ts: str, key: SigningKey | None = None) -> SigningKey:
        """Write a new node identity inside the caller's transaction."""
        key = key or SigningKey.generate()
        conn.execute("INSERT INTO node (id, did, name, org, created) VALUES (1, ?, ?, ?, ?)", (key.did, name, org, ts))
        conn.execute(
            "INSERT INTO identity_key (seq, did, public_key, seed, created) VALUES (0, ?, ?, ?, ?)",
            (key.did, key.public_key, key.seed, ts),
        )
        return key

    def signing_key(self) -> SigningKey:
        with self._lock:
            if self._current is None:
                seq, seed = self._db.read(
                    lambda c: c.execute("SELECT seq, seed FROM identity_key WHERE retired IS NULL").fetchone()
                )
                self._current = (seq, SigningKey.from_seed(seed))
            return self._current[1]

    def records(self) -> list[KeyRecord]:
        rows = self._db.read(
            lambda c: c.execute(
                "SELECT seq, did, public_key, created, retired, statement FROM identity_key ORDER BY seq"
            ).fetchall()
        )
        return [
            KeyRecord(seq, did, bytes(pub), created, retired, json.loads(stmt) if stmt else None)
            for seq, did, pub, created, retired, stmt in rows
        ]

    def on_retire(self, callback) -> None:
        """Have ``callback(conn, key)`` sign what still needs the current key, in the transaction
        that retires it (its private key is erased there)."""
        self._on_retire.append(callback)

    def rotate(self, conn, ts: str) -> tuple[SigningKey, KeyRecord]:
        """Retire the current key and add a new one, inside the caller's transaction."""
        seq, seed = conn.execute("SELECT seq, seed FROM identity_key WHERE retired IS NULL").fetchone()
        previous = SigningKey.from_seed(seed)
        for callback in self._on_retire:
            callback(conn, previous)
        new = SigningKey.generate()
        statement = rotation_statement(self.node_did, seq + 1, previous, new, ts)
        conn.execute("UPDATE identity_key SET retired = ?, seed = NULL WHERE seq = ?", (ts, seq))
        conn.execute(
            "INSERT INTO identity_key (seq, did, public_key, seed, created, statement) VALUES (?, ?, ?, ?, ?, ?)",
            (seq + 1, new.did, new.public_key, new.seed, ts, json.dumps(statement, sort_keys=True)),
        )
        return new, KeyRecord(seq + 1, new.did, new.public_key, ts, None, statement)

    def forget_cached(self) -> None:
        with self._lock:
            self._current = None


class IdentityService:
    def __init__(self, db: Database, keyring: KeyRing, evidence: EvidenceLog, clock: Clock, bus: EventBus) -> None:
        self._db = db
        self._keys = keyring
        self._evidence = evidence
        self._clock = clock
        self._bus = bus

    @property
    def did(self) -> str:
        return self._keys.node_did

    @property
    def name(self) -> str:
        return self._keys.name

    @property
    def org(self) -> str:
        return self._keys.org

    def current_key_did(self) -> str:
        return self._keys.signing_key().did

    def key_records(self) -> list[KeyRecord]:
        return self._keys.records()

    def rotate_key(self) -> KeyRecord:
        """Replace the signing key; the old public key stays in the chain for old evidence."""
        ts = rfc3339(self._clock.now())

        def work(conn) -> KeyRecord:
            _, record = self._keys.rotate(conn, ts)
            self._evidence.append(
                conn, action=Action.KEY_ROTATED, subject=self.did,
                payload={"seq": record.seq, "key": record.did, "statement": record.statement},
            )
            return record

        try:
            record = self._db.write(work)
        finally:
            self._keys.forget_cached()
        log.info("rotated the node key to key %d", record.seq)
        return record
