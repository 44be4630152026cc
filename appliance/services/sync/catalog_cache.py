"""Other nodes' retained catalog entries, cached per space so the space catalog can be browsed
and searched offline. What is shown is decided when it is read (``visible``), so a provider that
is revoked later, or an entry whose listing approval is withdrawn, disappears without a resync."""

from __future__ import annotations

import json

from appliance.domain.sync import CatalogEntry
from appliance.services.sync.codec import body_json

MAX_RESULTS = 1000


def upsert(conn, space_id: str, provider: str, dataset_id: str, body: object, msg_id: str, updated: str) -> None:
    conn.execute(
        "INSERT INTO space_catalog (space_id, provider, dataset_id, entry, msg_id, updated) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (space_id, provider, dataset_id) DO UPDATE SET entry = excluded.entry, msg_id = excluded.msg_id, "
        "updated = excluded.updated",
        (space_id, provider, dataset_id, body_json(body), msg_id, updated),
    )


def remove(conn, space_id: str, provider: str, dataset_id: str) -> bool:
    return conn.execute("DELETE FROM space_catalog WHERE space_id = ? AND provider = ? AND dataset_id = ?",
                        (space_id, provider, dataset_id)).rowcount == 1


def search(conn, space_id: str, query: str | None = None, *, limit: int = MAX_RESULTS) -> list[CatalogEntry]:
    """Entries of ``space_id``, newest first; ``query`` words must all appear (in the entry text or
    its dataset id, case-insensitive for Latin letters)."""
    sql = "SELECT provider, dataset_id, entry, updated FROM space_catalog WHERE space_id = ?"
    args: list[object] = [space_id]
    for word in (query or "").split():
        sql += " AND (entry LIKE ? ESCAPE '\\' OR dataset_id LIKE ? ESCAPE '\\')"
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        args += [pattern, pattern]
    sql += " ORDER BY updated DESC, provider, dataset_id LIMIT ?"
    args.append(limit)
    return [CatalogEntry(space_id, p, d, json.loads(e), u) for p, d, e, u in conn.execute(sql, args)]
