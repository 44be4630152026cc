"""Hosted mode: copying a scanned source into the encrypted vault, atomically with its version row.

The copy is written before the transaction (``Vault.put``) and recorded inside it
(:func:`record`); if the transaction fails the files are discarded, and if the process dies in
between they are orphans the vault removes at the next open. The copy is hashed as it is
encrypted: if its hash differs from the scan's, the source changed between the two reads and the
registration is refused rather than storing content that does not match its version.

An SQLite table is hosted as JSON Lines of its rows (one JSON array per row, in column order), the
same bytes its content hash is computed over, so the rest of the database is never copied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from appliance.domain.catalog import Kind
from appliance.errors import LocalText, SourceUnreadable, UnsupportedSource
from appliance.services.catalog import readers
from appliance.services.catalog.scanner import ScanResult
from appliance.storage.vault import Vault, VaultObject

Progress = Callable[[int, int], None]


@dataclass
class HostedCopy:
    object_id: str | None = None  # the single object of a file, table or SQLite table
    objects: list[VaultObject] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)  # folders: the scan's entries plus "object"


def host(vault: Vault, scan: ScanResult, progress: Progress | None = None) -> HostedCopy:
    """Copy the scanned content into the vault (not yet recorded: see :func:`record`)."""
    copy = HostedCopy()
    try:
        if scan.kind == Kind.API:
            raise UnsupportedSource(scan.source, LocalText("resource.reason.api_not_hosted"))
        if scan.kind == Kind.FOLDER:
            _host_folder(vault, scan, copy, progress)
        elif scan.kind == Kind.SQLITE_TABLE:
            assert scan.path is not None
            with readers.sqlite_rows(scan.path, scan.table) as rows:
                obj = vault.put((readers.row_line(r) for r in rows), expected_size=scan.size, name=scan.source)
            copy.objects.append(obj)
            _same(obj, scan.sha256, scan.source)
            copy.object_id = obj.id
        else:
            assert scan.path is not None  # only an API has none
            obj = vault.put_file(scan.path, progress=progress)
            copy.objects.append(obj)
            _same(obj, scan.sha256, scan.source)
            copy.object_id = obj.id
    except BaseException:
        discard(vault, copy)
        raise
    return copy


def _host_folder(vault: Vault, scan: ScanResult, copy: HostedCopy, progress: Progress | None) -> None:
    total, done = scan.size, 0
    for entry in scan.files:
        def step(n: int, _t: int, base: int = done) -> None:
            if progress:
                progress(base + n, total)

        obj = vault.put_file(scan.path / entry["path"], progress=step)
        copy.objects.append(obj)
        _same(obj, entry["sha256"], str(scan.path / entry["path"]))
        copy.files.append({**entry, "object": obj.id})
        done += entry["size"]


def _same(obj: VaultObject, expected: str, name: str) -> None:
    if obj.sha256 != expected:
        raise SourceUnreadable(name, LocalText("resource.reason.changed_while_registering"))


def record(vault: Vault, conn, copy: HostedCopy, created: str) -> None:
    for obj in copy.objects:
        vault.record(conn, obj, created)


def discard(vault: Vault, copy: HostedCopy) -> None:
    for obj in copy.objects:
        vault.discard(obj)


def hosted_sqlite_rows(chunks_stream, columns: list[str]) -> readers.RowSource:
    """The rows of a hosted SQLite table, from its decrypted JSON Lines."""

    def rows() -> Iterator[list]:
        with chunks_stream as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)

    return readers.RowSource(columns, rows())


def source_path(scan_source: str, kind: Kind) -> Path:
    return Path(scan_source.rsplit("#", 1)[0] if kind == Kind.SQLITE_TABLE else scan_source)
