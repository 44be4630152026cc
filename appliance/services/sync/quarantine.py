"""Received messages that hit a bug: kept with their bytes, out of the way, tried again after an upgrade.

A message whose checks or handlers raise an unexpected exception is not the sender's fault as far
as we can tell: it may be a bug in this version. Dropping it would lose it for good (its seq counts
as arrived, so nobody sends it again); leaving it unacknowledged would have the broker deliver it
again and again, and nothing after it would ever be applied. So it is kept here, in the same
transaction as the rest of its batch, and acknowledged. A link retries what an older version kept
when it starts (:func:`due`), and ``dsnode space quarantine --retry`` retries all of it now.
"""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import dataclass

import appliance
from appliance.domain.sync import DropReason

KEPT_AS = {"kept": DropReason.QUARANTINED, "again": DropReason.REPLAYED, "full": DropReason.HANDLER_FAILED}
"""How a message that hit a bug is counted, by what :func:`keep` did with it."""
MAX_ROWS = 1000  # per space; past it a failing message is dropped and counted (junk cannot fill the disk)
ERROR_CHARS = 300


@dataclass(frozen=True)
class Quarantined:
    id: int
    space_id: str
    topic: str  # relative to the space
    payload: bytes
    retained: bool
    received: str
    stage: str  # "inspect" (the checks failed) or "apply" (a handler failed)
    error: str
    code_version: str
    attempts: int


def code_version() -> str:
    return appliance.__version__


def describe(e: BaseException) -> str:
    """The exception's type and where it was raised: enough to find the bug, no message content."""
    frames = traceback.extract_tb(e.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 2)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(e).__name__}{where}"[:ERROR_CHARS]


def frames(e: BaseException) -> str:
    """Where the exception went through, for the log: file, line and function, never its message
    (which may quote what the peer sent)."""
    return "".join(traceback.format_list(traceback.extract_tb(e.__traceback__))).rstrip()


def keep(conn, space_id: str, topic: str, payload: bytes, retained: bool, received: str, stage: str,
         error: str) -> str:
    """Keep a message: "kept"; "again" if it was already kept (a redelivery, or a retry that failed
    again: its row counts one more attempt); "full" if the space's quarantine is full (the message
    is then dropped)."""
    digest = hashlib.sha256(topic.encode("utf-8", "surrogatepass") + b"\0" + payload).hexdigest()
    updated = conn.execute(
        "UPDATE sync_quarantine SET attempts = attempts + 1, error = ?, stage = ?, code_version = ? "
        "WHERE space_id = ? AND digest = ?", (error, stage, code_version(), space_id, digest))
    if updated.rowcount:
        return "again"
    if count(conn, space_id) >= MAX_ROWS:
        return "full"
    conn.execute(
        "INSERT INTO sync_quarantine "
        "(space_id, digest, topic, payload, retained, received, stage, error, code_version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (space_id, digest, topic, payload, int(retained), received, stage, error, code_version()))
    return "kept"


def count(conn, space_id: str) -> int:
    return conn.execute("SELECT COUNT(*) FROM sync_quarantine WHERE space_id = ?", (space_id,)).fetchone()[0]


def counts(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT space_id, COUNT(*) FROM sync_quarantine GROUP BY space_id"))


def rows(conn, space_id: str, *, older_only: bool = False) -> list[Quarantined]:
    """The space's kept messages, oldest first; ``older_only``: those an older version kept."""
    sql = ("SELECT id, space_id, topic, payload, retained, received, stage, error, code_version, attempts "
           "FROM sync_quarantine WHERE space_id = ?")
    args: tuple = (space_id,)
    if older_only:
        sql += " AND code_version != ?"
        args += (code_version(),)
    return [Quarantined(i, s, t, bytes(p), bool(r), rc, st, e, v, a)
            for i, s, t, p, r, rc, st, e, v, a in conn.execute(sql + " ORDER BY id", args)]


def due(conn, space_id: str) -> bool:
    """Whether an older version kept messages of this space (a link retries them when it starts)."""
    return conn.execute("SELECT 1 FROM sync_quarantine WHERE space_id = ? AND code_version != ? LIMIT 1",
                        (space_id, code_version())).fetchone() is not None


def remove(conn, row_id: int) -> None:
    conn.execute("DELETE FROM sync_quarantine WHERE id = ?", (row_id,))


def discard(conn, space_id: str) -> int:
    return conn.execute("DELETE FROM sync_quarantine WHERE space_id = ?", (space_id,)).rowcount
