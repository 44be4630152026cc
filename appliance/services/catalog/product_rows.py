"""Reading and writing product rows (schema 3) inside a caller's transaction. No decisions here."""

from __future__ import annotations

import json

from appliance.crypto.jcs import canonical
from appliance.domain import odrl
from appliance.domain.product import (LineageLink, Listing, ListingStatus, Offer, Product, ProductStatus,
                                      ResourcePin)

PRODUCT_URN = "urn:dsnode:product:"
OFFER_URN = "urn:dsnode:offer:"
RESOURCE_URN = "urn:dsnode:resource:"


def resolve(conn, table: str, urn: str, ref: str) -> list[str]:
    """Ids in ``table`` equal to ``ref`` or starting with it (with or without the URN prefix)."""
    ref = ref.strip()
    exact = conn.execute(f"SELECT id FROM {table} WHERE id = ?", (ref,)).fetchone()
    if exact:
        return [exact[0]]
    prefix = ref if ref.startswith(urn) else urn + ref
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return [r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (pattern,))]


def resource_state(conn, resource_id: str) -> tuple | None:
    """(removed, current_version, has that version) of a resource, None if unknown."""
    row = conn.execute("SELECT removed, current_version FROM resource WHERE id = ?", (resource_id,)).fetchone()
    if row is None:
        return None
    has = conn.execute("SELECT 1 FROM resource_version WHERE resource_id = ? AND version = ?",
                       (resource_id, row[1])).fetchone() is not None
    return row[0], row[1], has


def insert_product(conn, p: Product) -> None:
    conn.execute(
        "INSERT INTO product (id, version, status, title, description, keywords, domain, created, updated) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (p.id, p.version, p.status, p.title, p.description, json.dumps(list(p.keywords), ensure_ascii=False),
         p.domain, p.created, p.updated))


def update_product(conn, p: Product) -> None:
    conn.execute(
        "UPDATE product SET version = ?, status = ?, title = ?, description = ?, keywords = ?, domain = ?, updated = ? "
        "WHERE id = ?",
        (p.version, p.status, p.title, p.description, json.dumps(list(p.keywords), ensure_ascii=False), p.domain,
         p.updated, p.id))


def set_status(conn, product_id: str, status: ProductStatus, ts: str) -> None:
    conn.execute("UPDATE product SET status = ?, updated = ? WHERE id = ?", (status, ts, product_id))


def write_version(conn, p: Product, ts: str) -> None:
    """Pins, offers and the revision snapshot of ``p.version``."""
    conn.executemany(
        "INSERT INTO product_resource (product_id, product_version, resource_id, version) VALUES (?, ?, ?, ?)",
        [(p.id, p.version, pin.resource_id, pin.version) for pin in p.resources])
    conn.execute("DELETE FROM product_offer WHERE product_id = ?", (p.id,))
    conn.executemany(
        "INSERT INTO product_offer (uid, product_id, position, template, params, policy, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(o.uid, p.id, i, o.template, json.dumps(o.params, ensure_ascii=False),
          json.dumps(odrl.to_jsonld(o.policy), ensure_ascii=False), ts) for i, o in enumerate(p.offers)])
    conn.execute("INSERT INTO product_revision (product_id, version, created, snapshot) VALUES (?, ?, ?, ?)",
                 (p.id, p.version, ts, canonical(snapshot(p)).decode()))


def snapshot(p: Product) -> dict:
    return {"id": p.id, "version": p.version, "title": p.title, "description": p.description,
            "keywords": list(p.keywords), "domain": p.domain,
            "resources": [{"id": r.resource_id, "version": r.version} for r in p.resources],
            "offers": [{"template": o.template, "params": o.params, "policy": odrl.to_jsonld(o.policy)}
                       for o in p.offers]}


def offer_uid_taken(conn, uid: str, product_id: str) -> bool:
    row = conn.execute("SELECT product_id FROM product_offer WHERE uid = ?", (uid,)).fetchone()
    return row is not None and row[0] != product_id


def product_ids(conn, status: str | None = None) -> list[str]:
    if status:
        return [r[0] for r in conn.execute("SELECT id FROM product WHERE status = ? ORDER BY created, id", (status,))]
    return [r[0] for r in conn.execute("SELECT id FROM product ORDER BY created, id")]


def load(conn, product_id: str, version: int | None = None) -> Product | None:
    row = conn.execute("SELECT id, version, status, title, description, keywords, domain, created, updated "
                       "FROM product WHERE id = ?", (product_id,)).fetchone()
    if row is None:
        return None
    pid, current, status, title, description, keywords, domain, created, updated = row
    return Product(pid, current, ProductStatus(status), title, description, tuple(json.loads(keywords)), domain,
                   created, updated, pins(conn, pid, version or current), offers(conn, pid), listings(conn, pid))


def pins(conn, product_id: str, version: int) -> tuple[ResourcePin, ...]:
    rows = conn.execute(
        "SELECT pr.resource_id, pr.version, COALESCE(r.title, ''), COALESCE(r.kind, ''), v.sha256, v.size, "
        "v.row_count, v.columns FROM product_resource pr LEFT JOIN resource r ON r.id = pr.resource_id "
        "LEFT JOIN resource_version v ON v.resource_id = pr.resource_id AND v.version = pr.version "
        "WHERE pr.product_id = ? AND pr.product_version = ? ORDER BY pr.resource_id", (product_id, version))
    return tuple(ResourcePin(rid, ver, title, kind, sha, size, count, _column_names(cols))
                 for rid, ver, title, kind, sha, size, count, cols in rows)


def _column_names(text: str | None) -> tuple[str, ...]:
    try:
        data = json.loads(text or "[]")
    except ValueError:
        return ()
    return tuple(c.get("name", "") if isinstance(c, dict) else str(c) for c in data if c)


def offers(conn, product_id: str) -> tuple[Offer, ...]:
    out = []
    for uid, template, params, policy in conn.execute(
            "SELECT uid, template, params, policy FROM product_offer WHERE product_id = ? ORDER BY position",
            (product_id,)):
        parsed, _ = odrl.from_jsonld(json.loads(policy))
        assert parsed is not None  # checked before it was stored
        out.append(Offer(uid, parsed, template, json.loads(params)))
    return tuple(out)


_LISTING_COLUMNS = "product_id, space_id, status, version, listed_version, reason, notice_until, updated"


def listings(conn, product_id: str) -> tuple[Listing, ...]:
    return tuple(_listing(r) for r in conn.execute(
        f"SELECT {_LISTING_COLUMNS} FROM product_listing WHERE product_id = ? ORDER BY space_id", (product_id,)))


def listing(conn, product_id: str, space_id: str) -> Listing | None:
    row = conn.execute(
        f"SELECT {_LISTING_COLUMNS} FROM product_listing WHERE product_id = ? AND space_id = ?",
        (product_id, space_id)).fetchone()
    return _listing(row) if row else None


def all_listings(conn, status: str | None = None) -> list[Listing]:
    sql = f"SELECT {_LISTING_COLUMNS} FROM product_listing"
    rows = conn.execute(sql + " WHERE status = ? ORDER BY updated", (status,)) if status else \
        conn.execute(sql + " ORDER BY updated")
    return [_listing(r) for r in rows]


def _listing(row) -> Listing:
    pid, space, status, version, listed, reason, notice, updated = row
    return Listing(pid, space, ListingStatus(status), version, listed, reason, notice, updated)


def save_listing(conn, x: Listing) -> None:
    conn.execute(
        "INSERT INTO product_listing (product_id, space_id, status, version, listed_version, reason, notice_until, "
        "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (product_id, space_id) DO UPDATE SET "
        "status = excluded.status, version = excluded.version, listed_version = excluded.listed_version, "
        "reason = excluded.reason, notice_until = excluded.notice_until, updated = excluded.updated",
        (x.product_id, x.space_id, x.status, x.version, x.listed_version, x.reason, x.notice_until, x.updated))


def lineage(conn, resource_id: str, version: int | None = None) -> list[LineageLink]:
    sql = ("SELECT pr.product_id, pr.product_version, p.title, pr.resource_id, pr.version, "
           "pr.product_version = p.version "
           "FROM product_resource pr JOIN product p ON p.id = pr.product_id WHERE pr.resource_id = ?")
    args: list = [resource_id]
    if version is not None:
        sql += " AND pr.version = ?"
        args.append(version)
    rows = conn.execute(sql + " ORDER BY pr.product_id, pr.product_version", args)
    return [LineageLink(pid, pver, title, rid, ver, bool(cur)) for pid, pver, title, rid, ver, cur in rows]
