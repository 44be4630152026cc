"""Other nodes' retained catalog entries, cached per space so the space catalog can be browsed
and searched offline. What is shown is decided when it is read (``visible``), so a provider that
is revoked later, or an entry whose listing approval is withdrawn, disappears without a resync.

Each cached entry is also put into the catalog's full-text index under scope ``space:<id>`` (ref
``"<provider> <dataset id>"``), so searching the space catalog finds Chinese words and ranks the
way the local catalog search does; entries cached before the index existed are indexed when sync
starts (:func:`index_missing`)."""

from __future__ import annotations

import json

from appliance.domain.sync import CatalogEntry
from appliance.services.catalog.search import Filters, SearchIndex, query_in, words_of
from appliance.services.sync.codec import body_json

MAX_RESULTS = 1000


def scope_of(space_id: str) -> str:
    return f"space:{space_id}"


def _ref(provider: str, dataset_id: str) -> str:
    return f"{provider} {dataset_id}"


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _index(conn, space_id: str, provider: str, dataset_id: str, body: object, updated: str) -> None:
    entry = body.get("entry") if isinstance(body, dict) else None
    entry = entry if isinstance(entry, dict) else {}
    SearchIndex.index_entry(
        conn, scope=scope_of(space_id), kind="dataset", ref=_ref(provider, dataset_id),
        title=" ".join(_texts(entry.get("dct:title"))) or dataset_id,
        description=" ".join(_texts(entry.get("dct:description"))),
        keywords=[*_texts(entry.get("dcat:keyword")), dataset_id], columns=(),
        domain=" ".join(_texts(entry.get("dcat:theme"))), type="product", updated=updated)


def upsert(conn, space_id: str, provider: str, dataset_id: str, body: object, msg_id: str, updated: str) -> None:
    conn.execute(
        "INSERT INTO space_catalog (space_id, provider, dataset_id, entry, msg_id, updated) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (space_id, provider, dataset_id) DO UPDATE SET entry = excluded.entry, msg_id = excluded.msg_id, "
        "updated = excluded.updated",
        (space_id, provider, dataset_id, body_json(body), msg_id, updated),
    )
    _index(conn, space_id, provider, dataset_id, body, updated)


def remove(conn, space_id: str, provider: str, dataset_id: str) -> bool:
    SearchIndex.remove_entry(conn, scope_of(space_id), _ref(provider, dataset_id))
    return conn.execute("DELETE FROM space_catalog WHERE space_id = ? AND provider = ? AND dataset_id = ?",
                        (space_id, provider, dataset_id)).rowcount == 1


def index_missing(conn) -> int:
    """Index cached entries that have no index row (cached by an older version); returns how many."""
    rows = conn.execute(
        "SELECT c.space_id, c.provider, c.dataset_id, c.entry, c.updated FROM space_catalog c WHERE NOT EXISTS "
        "(SELECT 1 FROM search_doc d WHERE d.scope = 'space:' || c.space_id "
        "AND d.ref = c.provider || ' ' || c.dataset_id)").fetchall()
    for space_id, provider, dataset_id, entry, updated in rows:
        _index(conn, space_id, provider, dataset_id, json.loads(entry), updated)
    return len(rows)


_COLUMNS = "provider, dataset_id, entry, updated, msg_id"


def _entry(space_id: str, row) -> CatalogEntry:
    provider, dataset_id, entry, updated, msg_id = row
    return CatalogEntry(space_id, provider, dataset_id, json.loads(entry), updated, msg_id)


def search(conn, space_id: str, query: str | None = None, *, limit: int = MAX_RESULTS) -> list[CatalogEntry]:
    """Entries of ``space_id``: all of them newest first, or, with ``query``, those containing every
    word (title, keywords, columns, description or dataset id; Chinese words of two characters too),
    best match first."""
    words = words_of(query or "")
    if not words:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM space_catalog WHERE space_id = ? "
                            "ORDER BY updated DESC, provider, dataset_id LIMIT ?", (space_id, limit)).fetchall()
        return [_entry(space_id, row) for row in rows]
    keys = [(provider, dataset_id) for provider, _, dataset_id in
            (hit.ref.partition(" ") for hit in query_in(conn, words, Filters(), scope_of(space_id), limit))]
    if not keys:
        return []
    rows = conn.execute(f"SELECT {_COLUMNS} FROM (VALUES {','.join(['(?, ?)'] * len(keys))}) AS hit "
                        "JOIN space_catalog ON space_id = ? AND provider = hit.column1 AND dataset_id = hit.column2",
                        (*(part for key in keys for part in key), space_id)).fetchall()
    by_key = {(row[0], row[1]): _entry(space_id, row) for row in rows}
    return [by_key[key] for key in keys if key in by_key]  # in the index's order: best match first


def entries_of(conn, space_id: str, dataset_id: str) -> list[CatalogEntry]:
    """The cached entries of one dataset id (one per provider), newest first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM space_catalog WHERE space_id = ? AND dataset_id = ? "
                        "ORDER BY updated DESC, provider", (space_id, dataset_id)).fetchall()
    return [_entry(space_id, row) for row in rows]
