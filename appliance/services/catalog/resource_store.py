"""SQL for the ``resource`` and ``resource_version`` tables: rows in, dataclasses out."""

from __future__ import annotations

import json

from appliance.domain.catalog import RESOURCE_URN, Category, Column, Kind, Mode, Resource, ResourceVersion

RESOURCE_COLUMNS = ("id, kind, mode, title, description, keywords, domain, owner, update_frequency, category, "
                    "sensitivity, suggested_sensitivity, current_version, created, updated, removed, source, masking")
VERSION_COLUMNS = ("resource_id, version, created, source, size, sha256, row_count, columns, format, encoding, "
                   "time_range, samples, quality, sensitive, skipped, files, vault_object, mtime_ns")


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def insert_resource(conn, r: Resource) -> None:
    conn.execute(
        f"INSERT INTO resource ({RESOURCE_COLUMNS}) VALUES ({', '.join('?' * 18)})",
        (r.id, str(r.kind), str(r.mode), r.title, r.description, _dump(list(r.keywords)), r.domain, r.owner,
         r.update_frequency, str(r.category), r.sensitivity, r.suggested_sensitivity, r.current_version, r.created,
         r.updated, r.removed, r.source, _dump(list(r.masking))),
    )


def insert_version(conn, v: ResourceVersion, mtime_ns: int | None) -> None:
    conn.execute(
        f"INSERT INTO resource_version ({VERSION_COLUMNS}) VALUES ({', '.join('?' * 18)})",
        (v.resource_id, v.version, v.created, v.source, v.size, v.sha256, v.row_count,
         _dump([c.to_json() for c in v.columns]), v.format, v.encoding,
         _dump(v.time_range) if v.time_range else None, _dump([list(s) for s in v.samples]),
         _dump(v.quality) if v.quality else None, _dump(list(v.sensitive)), _dump(v.skipped),
         _dump(list(v.files)), v.vault_object, mtime_ns),
    )


def update_resource(conn, resource_id: str, **fields) -> None:
    if not fields:
        return
    values = [(_dump(list(v)) if k in ("keywords", "masking") else v) for k, v in fields.items()]
    sets = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE resource SET {sets} WHERE id = ?", (*values, resource_id))


def row_to_resource(row) -> Resource:
    (rid, kind, mode, title, description, keywords, domain, owner, freq, category, sensitivity, suggested,
     current, created, updated, removed, source, masking) = row
    return Resource(id=rid, kind=Kind(kind), mode=Mode(mode), title=title, source=source, current_version=current,
                    created=created, updated=updated, description=description, keywords=tuple(json.loads(keywords)),
                    domain=domain, owner=owner, update_frequency=freq, category=Category(category),
                    sensitivity=sensitivity, suggested_sensitivity=suggested, masking=tuple(json.loads(masking)),
                    removed=removed)


def row_to_version(row) -> tuple[ResourceVersion, int | None]:
    (rid, version, created, source, size, sha256, row_count, columns, fmt, encoding, time_range, samples, quality,
     sens, skipped, files, vault_object, mtime_ns) = row
    v = ResourceVersion(
        resource_id=rid, version=version, created=created, source=source, size=size, sha256=sha256, format=fmt,
        encoding=encoding, row_count=row_count, columns=tuple(Column.from_json(c) for c in json.loads(columns)),
        time_range=json.loads(time_range) if time_range else None,
        samples=tuple(tuple(s) for s in json.loads(samples)), quality=json.loads(quality) if quality else None,
        sensitive=tuple(json.loads(sens)), skipped=json.loads(skipped), files=tuple(json.loads(files)),
        vault_object=vault_object,
    )
    return v, mtime_ns


def set_options(conn, resource_id: str, options: dict) -> None:
    conn.execute("UPDATE resource SET options = ? WHERE id = ?", (_dump(options), resource_id))


def load_options(conn, resource_id: str) -> dict:
    row = conn.execute("SELECT options FROM resource WHERE id = ?", (resource_id,)).fetchone()
    return json.loads(row[0]) if row else {}


def load_resource(conn, resource_id: str) -> Resource | None:
    row = conn.execute(f"SELECT {RESOURCE_COLUMNS} FROM resource WHERE id = ?", (resource_id,)).fetchone()
    return row_to_resource(row) if row else None


def list_resources(conn, include_removed: bool) -> list[Resource]:
    where = "" if include_removed else "WHERE removed IS NULL"
    rows = conn.execute(f"SELECT {RESOURCE_COLUMNS} FROM resource {where} ORDER BY created, id").fetchall()
    return [row_to_resource(r) for r in rows]


def find_by_source(conn, source: str) -> Resource | None:
    row = conn.execute(f"SELECT {RESOURCE_COLUMNS} FROM resource WHERE source = ? AND removed IS NULL",
                       (source,)).fetchone()
    return row_to_resource(row) if row else None


def ids_with_prefix(conn, prefix: str) -> list[str]:
    text = prefix.removeprefix(RESOURCE_URN).lower()
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute("SELECT id FROM resource WHERE id LIKE ? ESCAPE '\\' ORDER BY id",
                        (RESOURCE_URN + escaped + "%",)).fetchall()
    return [r[0] for r in rows]


def load_version(conn, resource_id: str, version: int) -> tuple[ResourceVersion, int | None] | None:
    row = conn.execute(f"SELECT {VERSION_COLUMNS} FROM resource_version WHERE resource_id = ? AND version = ?",
                       (resource_id, version)).fetchone()
    return row_to_version(row) if row else None


def load_versions(conn, resource_id: str) -> list[ResourceVersion]:
    rows = conn.execute(f"SELECT {VERSION_COLUMNS} FROM resource_version WHERE resource_id = ? ORDER BY version",
                        (resource_id,)).fetchall()
    return [row_to_version(r)[0] for r in rows]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _page_filter(text: str | None) -> tuple[str, list[str]]:
    if not text:
        return "removed IS NULL", []
    pattern = _like(text)
    return ("removed IS NULL AND (title LIKE ? ESCAPE '\\' OR source LIKE ? ESCAPE '\\' "
            "OR description LIKE ? ESCAPE '\\')", [pattern, pattern, pattern])


def page_resources(conn, *, limit: int, after: str | None, text: str | None) -> list[Resource]:
    """Newest first, ``limit`` rows after the resource ``after`` (keyset paging on created, id)."""
    where, args = _page_filter(text)
    if after is not None:
        where += " AND (created, id) < ((SELECT created FROM resource WHERE id = ?), ?)"
        args += [after, after]
    rows = conn.execute(f"SELECT {RESOURCE_COLUMNS} FROM resource WHERE {where} "
                        "ORDER BY created DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
    return [row_to_resource(r) for r in rows]


def count_resources(conn, *, text: str | None) -> int:
    where, args = _page_filter(text)
    return conn.execute(f"SELECT COUNT(*) FROM resource WHERE {where}", args).fetchone()[0]
