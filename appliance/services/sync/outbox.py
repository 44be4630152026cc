"""The outbox: every outgoing message, written in the transaction that caused it.

A row keeps the canonical envelope without its key id and signature (``sign_at`` says where they
go); the sending thread signs it as it publishes (``codec.sign_stored``), so the writer's
transaction does not wait for a signature. The sending thread reads queued rows in id order,
publishes them, and marks them sent when the broker acknowledges them (many at a time, in one
transaction). Sent rows stay for a retention window so a receiver that saw a gap can ask for them
again (``requeue``).
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.services.sync.codec import sign_stored


@dataclass(frozen=True)
class Queued:
    id: int
    topic: str
    payload: bytes
    retained: bool
    sign_at: int | None  # None: ``payload`` is what is published (a clear, a row of schema 8 or older)


def next_seq(conn, space_id: str, stream: str) -> int:
    """The next sequence number of this node's ``stream`` in ``space_id`` (from 1, never reused)."""
    row = conn.execute("SELECT floor_seq FROM sync_stream_out WHERE space_id = ? AND stream = ?",
                       (space_id, stream)).fetchone()
    return (row[0] if row else 0) + 1


def take_seq(conn, space_id: str, stream: str) -> int:
    """Use the next sequence number of ``stream`` (in the caller's transaction) and return it."""
    return allocate(conn, space_id, stream, 1)


def allocate(conn, space_id: str, stream: str, n: int) -> int:
    """Reserve the next ``n`` seqs of a stream (``floor_seq`` is the highest used); returns the first."""
    return conn.execute(
        "INSERT INTO sync_stream_out (space_id, stream, floor_seq) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (space_id, stream) DO UPDATE SET floor_seq = floor_seq + ?3 RETURNING floor_seq",
        (space_id, stream, n),
    ).fetchone()[0] - n + 1


_COLUMNS = "space_id, topic, msg_id, type, stream, seq, retained, payload, created, sign_at"
_ROW = "(" + ", ".join("?" * len(_COLUMNS.split(", "))) + ")"
ROWS_PER_INSERT = 90  # 900 parameters, under SQLite's oldest limit of 999


def row(*, space_id: str, topic: str, msg_id: str | None, type: str | None, stream: str,  # noqa: A002
        seq: int | None, retained: bool, payload: bytes, created: str, sign_at: int | None = None) -> tuple:
    """An outbox row's values, for :func:`enqueue`."""
    return (space_id, topic, msg_id, type, stream, seq, int(retained), payload, created, sign_at)


def enqueue(conn, rows: list[tuple]) -> None:
    """Queue ``rows`` (from :func:`row`), in order, a few statements for many rows."""
    for i in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[i : i + ROWS_PER_INSERT]
        conn.execute(f"INSERT INTO sync_outbox ({_COLUMNS}) VALUES " + ",".join([_ROW] * len(chunk)),
                     [value for r in chunk for value in r])



def fetch_queued(conn, space_id: str, *, after: int, limit: int, skip: frozenset[int] = frozenset()) -> list[Queued]:
    """Queued rows with id above ``after``, oldest first, leaving out ``skip`` (already in flight)."""
    rows = conn.execute(
        "SELECT id, topic, payload, retained, sign_at FROM sync_outbox WHERE space_id = ? AND sent IS NULL AND id > ? "
        "ORDER BY id LIMIT ?",
        (space_id, after, limit + len(skip)),
    ).fetchall()
    return [Queued(i, t, bytes(p), bool(r), a) for i, t, p, r, a in rows if i not in skip][:limit]


def sign_unsigned(conn, key) -> int:
    """Sign every row still kept unsigned with ``key`` (the node key about to be retired: what was
    queued under it goes out signed by it, as if signed when queued). Returns how many."""
    rows = conn.execute("SELECT id, payload, sign_at FROM sync_outbox WHERE sign_at IS NOT NULL").fetchall()
    signed = []
    for row_id, payload, at in rows:
        try:
            signed.append((sign_stored(key, bytes(payload), at), row_id))
        except ValueError:  # a damaged row: the sending thread records it as refused
            continue
    conn.executemany("UPDATE sync_outbox SET payload = ?, sign_at = NULL WHERE id = ?", signed)
    return len(signed)


def mark_sent(conn, ids: list[int], ts: str) -> None:
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        conn.execute(f"UPDATE sync_outbox SET sent = ? WHERE id IN ({','.join('?' * len(chunk))})", (ts, *chunk))


def mark_refused(conn, refused: list[tuple[int, str]], ts: str) -> None:
    """The broker refused these (e.g. not authorised): recorded, never retried."""
    conn.executemany("UPDATE sync_outbox SET sent = ?, error = ? WHERE id = ?", [(ts, why, i) for i, why in refused])


def queued_count(conn, space_id: str) -> int:
    return conn.execute("SELECT COUNT(*) FROM sync_outbox WHERE space_id = ? AND sent IS NULL",
                        (space_id,)).fetchone()[0]


def requeue(conn, space_id: str, stream: str, seqs: list[int]) -> tuple[int, list[int]]:
    """Queue the messages ``seqs`` of ``stream`` again (same bytes, same ids).

    Returns how many were queued again and which seqs this node no longer has. Retained messages
    are not sent again on request (receivers track gaps only in streams of direct and broadcast
    messages; a retained topic's latest state is what counts, see ``requeue_retained``).
    """
    found: set[int] = set()
    again = 0
    for i in range(0, len(seqs), 500):
        chunk = seqs[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for row_id, seq, sent in conn.execute(
            f"SELECT id, seq, sent FROM sync_outbox WHERE space_id = ? AND stream = ? AND seq IN ({marks}) "
            "AND retained = 0 AND error IS NULL", (space_id, stream, *chunk),
        ).fetchall():
            found.add(seq)
            if sent is not None:
                conn.execute("UPDATE sync_outbox SET sent = NULL WHERE id = ?", (row_id,))
                again += 1
    return again, [s for s in seqs if s not in found]


def confirm(conn, space_id: str, stream: str, through: int) -> None:
    """The recipient of ``stream`` has every message up to ``through`` (a seq this node used)."""
    if through >= next_seq(conn, space_id, stream):
        return
    conn.execute(
        "INSERT INTO sync_stream_out (space_id, stream, confirmed) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (space_id, stream) DO UPDATE SET confirmed = MAX(confirmed, ?3)",
        (space_id, stream, through),
    )


def requeue_unconfirmed(conn, space_id: str, stream: str) -> int:
    """Queue again what was sent on ``stream`` but not confirmed (its recipient just came online:
    it may not have had a session at the broker when they were sent). Returns how many."""
    return conn.execute(
        "UPDATE sync_outbox SET sent = NULL WHERE space_id = ? AND stream = ? AND retained = 0 AND sent IS NOT NULL "
        "AND error IS NULL "
        "AND seq > COALESCE((SELECT confirmed FROM sync_stream_out WHERE space_id = ? AND stream = ?), 0)",
        (space_id, stream, space_id, stream),
    ).rowcount


LATEST_RETAINED = (
    "SELECT MAX(id) FROM sync_outbox WHERE retained = 1 AND error IS NULL{where} GROUP BY space_id, topic"
)
"""Each retained topic's latest message (a clear included): what the broker should hold for it."""


def requeue_retained(conn, space_id: str) -> int:
    """Queue again the latest retained message of every topic this node published in ``space_id``
    (same bytes, same ids), unless it is a clear: the broker had no session for this node, so it may
    have lost its retained store. Returns how many."""
    return conn.execute(
        "UPDATE sync_outbox SET sent = NULL WHERE sent IS NOT NULL AND length(payload) > 0 AND id IN ("
        + LATEST_RETAINED.format(where=" AND space_id = ?1") + ")",
        (space_id,),
    ).rowcount


def purge(conn, before: str) -> int:
    """Forget messages sent before ``before`` (RFC 3339): past the resend window (seqs are counted
    in ``sync_stream_out``, so none is used twice). The latest retained message of each topic is
    kept whatever its age (``requeue_retained`` publishes it again) unless it is a clear (then the
    topic has nothing left to publish again)."""
    keep = LATEST_RETAINED.format(where="")
    return conn.execute(f"DELETE FROM sync_outbox WHERE sent IS NOT NULL AND sent < ? "
                        f"AND (length(payload) = 0 OR id NOT IN ({keep}))", (before,)).rowcount
