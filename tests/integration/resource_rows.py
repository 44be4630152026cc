"""Resources for product and search tests, written with plain SQL in the schema-2 contract columns
(``resource``, ``resource_version``), so these tests do not depend on how resources get registered."""

from __future__ import annotations

import hashlib
import json
import uuid

RESOURCE_URN = "urn:dsnode:resource:"


def add_resource(node, title: str, *, description: str = "", keywords=(), domain: str = "", kind: str = "table",
                 category: str = "general", sensitivity: int | None = None, columns=(), rid: str | None = None,
                 ts: str = "2026-01-01T00:00:00.000Z") -> str:
    """Insert a resource with version 1 (columns: names, or (name, type) pairs); returns its id."""
    rid = rid or RESOURCE_URN + str(uuid.uuid4())

    def work(conn):
        conn.execute(
            "INSERT INTO resource (id, kind, mode, title, description, keywords, domain, owner, update_frequency, "
            "category, sensitivity, suggested_sensitivity, current_version, created, updated, source) "
            "VALUES (?, ?, 'referenced', ?, ?, ?, ?, '', '', ?, ?, NULL, 1, ?, ?, ?)",
            (rid, kind, title, description, json.dumps(list(keywords), ensure_ascii=False), domain, category,
             sensitivity, ts, ts, f"/data/{rid[-8:]}.csv"))
        _version(conn, rid, 1, columns, ts)

    node.store.db.write(work)
    return rid


def new_version(node, rid: str, columns=(), ts: str = "2026-01-02T00:00:00.000Z") -> int:
    """Add the next version of ``rid`` and make it current; returns its number."""
    def work(conn):
        (current,) = conn.execute("SELECT current_version FROM resource WHERE id = ?", (rid,)).fetchone()
        _version(conn, rid, current + 1, columns, ts)
        conn.execute("UPDATE resource SET current_version = ?, updated = ? WHERE id = ?", (current + 1, ts, rid))
        return current + 1

    return node.store.db.write(work)


def update_resource(node, rid: str, **fields) -> None:
    if "keywords" in fields:
        fields["keywords"] = json.dumps(list(fields["keywords"]), ensure_ascii=False)
    sets = ", ".join(f"{k} = ?" for k in fields)
    node.store.db.write(lambda c: c.execute(f"UPDATE resource SET {sets} WHERE id = ?", (*fields.values(), rid)))


def remove_resource(node, rid: str, ts: str = "2026-01-03T00:00:00.000Z") -> None:
    update_resource(node, rid, removed=ts, updated=ts)


def _version(conn, rid: str, version: int, columns, ts: str) -> None:
    cols = [{"name": c, "type": "text", "sensitive": False} if isinstance(c, str)
            else {"name": c[0], "type": c[1], "sensitive": False} for c in columns]
    conn.execute(
        "INSERT INTO resource_version (resource_id, version, created, source, size, sha256, row_count, columns) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (rid, version, ts, f"/data/{rid[-8:]}.csv", 1000 + version,
         hashlib.sha256(f"{rid}{version}".encode()).hexdigest(), 100 * version, json.dumps(cols, ensure_ascii=False)))
