"""The inbox side in the store: message ids already applied (dedup), what arrived of each
sender's sequence streams (gaps), and the latest state applied per retained topic.

Everything here runs inside the write transaction that applies the message, so a message's
effect, its dedup row and its sequence bookkeeping commit together: exactly-once in effect.
"""

from __future__ import annotations

import json

from appliance.domain.sync import StreamTrack


def remember(conn, space_id: str, msg_id: str, sender: str, type: str, received: str,  # noqa: A002
             outcome: str = "applied") -> bool:
    """Record message ``msg_id``; False if it was already there (a replay or a redelivery)."""
    cur = conn.execute(
        "INSERT INTO sync_inbox (space_id, msg_id, sender, type, received, outcome) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (space_id, msg_id) DO NOTHING",
        (space_id, msg_id, sender, type, received, outcome),
    )
    return cur.rowcount == 1


def seen(conn, space_id: str, msg_id: str) -> bool:
    return conn.execute("SELECT 1 FROM sync_inbox WHERE space_id = ? AND msg_id = ?",
                        (space_id, msg_id)).fetchone() is not None


# --- sequence streams --------------------------------------------------------------------------


def load_track(conn, space_id: str, sender: str, stream: str) -> tuple[StreamTrack, int] | None:
    row = conn.execute(
        "SELECT contiguous, above, attempts FROM sync_stream_in WHERE space_id = ? AND sender = ? AND stream = ?",
        (space_id, sender, stream),
    ).fetchone()
    return (StreamTrack(row[0], json.loads(row[1])), row[2]) if row else None


def save_track(conn, space_id: str, sender: str, stream: str, track: StreamTrack, attempts: int) -> None:
    conn.execute(
        "INSERT INTO sync_stream_in (space_id, sender, stream, contiguous, above, attempts) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (space_id, sender, stream) DO UPDATE SET contiguous = excluded.contiguous, "
        "above = excluded.above, attempts = excluded.attempts",
        (space_id, sender, stream, track.contiguous, json.dumps(track.above), attempts),
    )


def note_seq(conn, space_id: str, sender: str, stream: str, seq: int, *, from_start: bool) -> bool:
    """Record that ``seq`` of ``sender``'s ``stream`` arrived; True if a gap is open below it.

    ``from_start``: the stream is this node's own (its inbox), so it is expected from seq 1;
    otherwise (a broadcast) it is followed from the first message seen.
    """
    loaded = load_track(conn, space_id, sender, stream)
    if loaded is None:
        track, attempts = StreamTrack(0 if from_start else seq - 1), 0
    else:
        track, attempts = loaded
    gap = track.add(seq)
    save_track(conn, space_id, sender, stream, track, attempts if gap else 0)
    return gap


def gapped_streams(conn, space_id: str) -> list[tuple[str, str, StreamTrack, int]]:
    rows = conn.execute(
        "SELECT sender, stream, contiguous, above, attempts FROM sync_stream_in WHERE space_id = ? AND above != '[]'",
        (space_id,),
    ).fetchall()
    return [(s, st, StreamTrack(c, json.loads(a)), n) for s, st, c, a, n in rows]


# --- retained state ----------------------------------------------------------------------------


def state_verdict(conn, space_id: str, topic: str, msg_id: str, seq: int, ts: str) -> str:
    """``new`` to apply, ``same`` for the message already applied, ``older`` for outdated state.

    Newer means a higher seq or a later signed time than what was applied: a replay of older state
    has both lower, while a sender restored from a backup (seq went back) still moves forward in time.
    """
    row = conn.execute("SELECT msg_id, seq, ts FROM sync_state WHERE space_id = ? AND topic = ?",
                       (space_id, topic)).fetchone()
    if row is None:
        return "new"
    if row[0] == msg_id:
        return "same"
    if seq > row[1] or ts > row[2]:
        return "new"
    return "older"


def save_state(conn, space_id: str, topic: str, sender: str, msg_id: str, seq: int, ts: str, updated: str) -> None:
    conn.execute(
        "INSERT INTO sync_state (space_id, topic, sender, msg_id, seq, ts, cleared, updated) "
        "VALUES (?, ?, ?, ?, ?, ?, 0, ?) "
        "ON CONFLICT (space_id, topic) DO UPDATE SET sender = excluded.sender, msg_id = excluded.msg_id, "
        "seq = excluded.seq, ts = excluded.ts, cleared = 0, updated = excluded.updated",
        (space_id, topic, sender, msg_id, seq, ts, updated),
    )


def clear_state(conn, space_id: str, topic: str, updated: str) -> bool:
    """A retained topic was cleared; the last seq and time stay, so older state is still refused.
    Returns False if it was already clear (or never set)."""
    cur = conn.execute(
        "UPDATE sync_state SET cleared = 1, msg_id = NULL, updated = ? "
        "WHERE space_id = ? AND topic = ? AND cleared = 0",
        (updated, space_id, topic),
    )
    return cur.rowcount == 1


def purge(conn, before: str) -> int:
    """Forget message ids received before ``before``: past the dedup window (older ones are stale anyway)."""
    return conn.execute("DELETE FROM sync_inbox WHERE received < ?", (before,)).rowcount
