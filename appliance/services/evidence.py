"""The node's evidence log: append-only entries in an RFC 6962 Merkle tree, with signed checkpoints.

``append`` runs inside the caller's write transaction, so an action and its evidence commit
together or not at all: if the evidence cannot be written, the action does not happen.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from appliance.clock import Clock, rfc3339
from appliance.crypto import checkpoint as notes
from appliance.crypto import merkle
from appliance.crypto.jcs import canonical
from appliance.crypto.keys import SigningKey
from appliance.crypto.evidence_entry import EMPTY_DETAILS, EvidenceEntry
from appliance.errors import EvidenceError, EvidenceWriteFailed, LocalText
from appliance.storage.database import Database

log = logging.getLogger(__name__)

PAGE = 5000


def origin_for(node_did: str) -> str:
    """The checkpoint origin line of a node's log."""
    return f"dsnode/evidence/{node_did}"


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created: str


def stored_hash_owner(s: int) -> tuple[int, int]:
    """(leaf m, position) of stored hash ``s``: the append of leaf m wrote it, at that position."""
    if s < 0:
        raise ValueError(f"a stored hash index must not be negative, got {s}")
    # m is the largest leaf with stored_hash_count(m) = 2m - popcount(m) <= s. As popcount(m) is at
    # most the bit length of s, m lies in [s // 2, (s + bit_length(s)) // 2]: a few steps to search.
    lo, hi = s // 2, min(s, (s + s.bit_length()) // 2)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if 2 * mid - mid.bit_count() <= s:
            lo = mid
        else:
            hi = mid - 1
    return lo, s - (2 * lo - lo.bit_count())


def read_hashes(conn, indexes: Sequence[int]) -> list[bytes]:
    """Stored tree hashes by index, in the order asked (a DB-backed ``merkle`` reader)."""
    if not indexes:
        return []
    owners = {s: stored_hash_owner(s) for s in indexes}
    rows: dict[int, bytes] = {}
    leaves = sorted({m for m, _ in owners.values()})
    for i in range(0, len(leaves), 500):
        chunk = leaves[i : i + 500]
        marks = ",".join("?" * len(chunk))
        rows.update(conn.execute(f"SELECT idx, hashes FROM evidence_entry WHERE idx IN ({marks})", chunk))
    out = []
    for s in indexes:
        m, pos = owners[s]
        blob = rows.get(m)
        if blob is None or len(blob) < (pos + 1) * merkle.HASH_SIZE:
            raise EvidenceError(LocalText("evidence.reason.tree_hash_missing", s, m))
        out.append(bytes(blob[pos * merkle.HASH_SIZE : (pos + 1) * merkle.HASH_SIZE]))
    return out


def row_to_entry(row) -> EvidenceEntry:
    idx, ts, actor, action, subject, phash, payload = row
    return EvidenceEntry(idx, ts, actor, action, subject, bytes(phash), json.loads(payload) if payload else None)


ENTRY_COLUMNS = "idx, ts, actor, action, subject, payload_hash, payload"


def append_entry(conn, *, ts: str, actor: str, action: str, subject: str, payload: dict | None) -> EvidenceEntry:
    """Append one entry to the log inside an open write transaction; raises EvidenceWriteFailed."""
    try:
        n = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM evidence_entry").fetchone()[0]
        details = canonical(payload) if payload is not None else None
        entry = EvidenceEntry(index=n, ts=ts, actor=actor, action=str(action), subject=subject,
                              payload_hash=hashlib.sha256(details or EMPTY_DETAILS).digest(), payload=payload)
        leaf = merkle.leaf_hash(entry.leaf_data())
        new_hashes = merkle.stored_hashes_for_append(n, leaf, lambda idx: read_hashes(conn, idx))
        conn.execute(
            f"INSERT INTO evidence_entry ({ENTRY_COLUMNS}, hashes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (n, entry.ts, entry.actor, entry.action, entry.subject, entry.payload_hash,
             details.decode() if details is not None else None, b"".join(new_hashes)),
        )
    except EvidenceError:
        raise
    except Exception as e:
        raise EvidenceWriteFailed(f"{type(e).__name__}: {e}") from e
    return entry


class NodeKeys(Protocol):
    """What the log needs of the node's key ring (:class:`appliance.services.identity.KeyRing`, which
    imports this module): who signs, and the current key."""

    node_did: str

    def signing_key(self) -> SigningKey: ...


class EvidenceLog:
    def __init__(self, db: Database, keyring: NodeKeys, clock: Clock) -> None:
        self._db = db
        self._keys = keyring
        self._clock = clock
        self.origin = origin_for(keyring.node_did)

    # --- writing ------------------------------------------------------------------------------

    def append(self, conn, *, action: str, subject: str, payload: dict | None = None,
               actor: str | None = None) -> EvidenceEntry:
        """Append one entry inside the caller's open write transaction."""
        return append_entry(conn, ts=rfc3339(self._clock.now()), actor=actor or self._keys.node_did,
                            action=action, subject=subject, payload=payload)

    def record(self, action: str, subject: str, payload: dict | None = None) -> EvidenceEntry:
        """Append one entry in a transaction of its own."""
        return self._db.write(lambda conn: self.append(conn, action=action, subject=subject, payload=payload))

    def checkpoint(self) -> StoredCheckpoint:
        """Sign and keep a checkpoint of the current tree (returns the latest if nothing changed)."""

        def work(conn) -> StoredCheckpoint:
            size = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM evidence_entry").fetchone()[0]
            latest = self._latest(conn)
            if latest and latest.size == size:
                return latest
            root = merkle.tree_hash(size, lambda idx: read_hashes(conn, idx))
            body = notes.Checkpoint(self.origin, size, root).body()
            note = notes.sign_note(body, self._keys.node_did, self._keys.signing_key().seed)
            made = StoredCheckpoint(size, root, note, rfc3339(self._clock.now()))
            conn.execute(
                "INSERT INTO evidence_checkpoint (size, root, note, created) VALUES (?, ?, ?, ?)",
                (made.size, made.root, made.note, made.created),
            )
            return made

        return self._db.write(work)

    # --- reading ------------------------------------------------------------------------------

    def size(self) -> int:
        return self._db.read(lambda c: c.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM evidence_entry").fetchone()[0])

    def entries(self, start: int = 0, stop: int | None = None, *, subject: str | None = None,
                action: str | None = None, newest_first: bool = False) -> Iterator[EvidenceEntry]:
        """Entries in index order (or newest first), read a page at a time."""
        where = ["idx >= ?", "idx < ?"]
        args: list[int | str] = [start, stop if stop is not None else 2**62]
        if subject is not None:
            where.append("subject = ?")
            args.append(subject)
        if action is not None:
            where.append("action = ?")
            args.append(action)
        order = "DESC" if newest_first else "ASC"
        cursor_cond = "idx < ?" if newest_first else "idx > ?"
        last = 2**62 if newest_first else -1
        while True:
            sql = (f"SELECT {ENTRY_COLUMNS} FROM evidence_entry WHERE {' AND '.join(where)} AND {cursor_cond} "
                   f"ORDER BY idx {order} LIMIT {PAGE}")
            rows = self._db.read(lambda c, sql=sql, params=(*args, last): c.execute(sql, params).fetchall())
            yield from map(row_to_entry, rows)
            if len(rows) < PAGE:
                return
            last = rows[-1][0]

    def page(self, *, before: int | None = None, limit: int = 100, text: str | None = None,
             actions: Sequence[str] = ()) -> list[EvidenceEntry]:
        """Newest first: ``limit`` entries with an index below ``before`` (keyset paging). With ``text``,
        those whose action, subject or actor contains it, or whose action is one of ``actions`` (the
        actions whose name in the reader's language contains it)."""
        where, args = _filter(text, actions)
        if before is not None:
            where.append("idx < ?")
            args.append(before)
        sql = f"SELECT {ENTRY_COLUMNS} FROM evidence_entry {_where(where)} ORDER BY idx DESC LIMIT ?"
        rows = self._db.read(lambda c: c.execute(sql, (*args, limit)).fetchall())
        return [row_to_entry(r) for r in rows]

    def count(self, *, text: str | None = None, actions: Sequence[str] = ()) -> int:
        """How many entries :meth:`page` pages through (the log's size without a filter)."""
        if not text and not actions:
            return self.size()
        where, args = _filter(text, actions)
        sql = f"SELECT COUNT(*) FROM evidence_entry {_where(where)}"
        return self._db.read(lambda c: c.execute(sql, args).fetchone()[0])

    def get(self, index: int) -> EvidenceEntry | None:
        row = self._db.read(
            lambda c: c.execute(f"SELECT {ENTRY_COLUMNS} FROM evidence_entry WHERE idx = ?", (index,)).fetchone()
        )
        return row_to_entry(row) if row else None

    def root(self, size: int | None = None) -> bytes:
        return self._db.read(lambda c: merkle.tree_hash(self._size_or(c, size), lambda idx: read_hashes(c, idx)))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._db.read(lambda c: merkle.inclusion_proof(size, index, lambda idx: read_hashes(c, idx)))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return self._db.read(lambda c: merkle.consistency_proof(new_size, old_size, lambda idx: read_hashes(c, idx)))

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self._db.read(self._latest)

    def checkpoints(self) -> list[StoredCheckpoint]:
        rows = self._db.read(
            lambda c: c.execute("SELECT size, root, note, created FROM evidence_checkpoint ORDER BY size").fetchall()
        )
        return [StoredCheckpoint(s, bytes(r), n, t) for s, r, n, t in rows]

    @staticmethod
    def _latest(conn) -> StoredCheckpoint | None:
        row = conn.execute(
            "SELECT size, root, note, created FROM evidence_checkpoint ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return StoredCheckpoint(row[0], bytes(row[1]), row[2], row[3]) if row else None

    @staticmethod
    def _size_or(conn, size: int | None) -> int:
        if size is not None:
            return size
        return conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM evidence_entry").fetchone()[0]


def _filter(text: str | None, actions: Sequence[str]) -> tuple[list[str], list[int | str]]:
    if not text and not actions:
        return [], []
    alternatives: list[str] = []
    args: list[int | str] = []
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        alternatives += [f"{column} LIKE ? ESCAPE '\\'" for column in ("action", "subject", "actor")]
        args += [pattern] * 3
    if actions:
        alternatives.append(f"action IN ({', '.join('?' * len(actions))})")
        args += list(actions)
    return ["(" + " OR ".join(alternatives) + ")"], args


def _where(conditions: list[str]) -> str:
    return ("WHERE " + " AND ".join(conditions)) if conditions else ""
