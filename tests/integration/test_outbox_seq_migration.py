"""Schema 8 moves each outgoing stream's seq counter into ``sync_stream_out``: a store written
before it goes on numbering every stream after the highest seq it used, never twice."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import appliance.storage.migrations as real
from appliance.services.sync import outbox
from appliance.storage.database import Database

KEY = bytes(range(32))
OLD = ("m0001_foundation", "m0002_resources", "m0003_products", "m0004_sync", "m0005_operator",
       "m0006_contracts", "m0007_grades")


def _schema7_package(tmp_path: Path, monkeypatch) -> str:
    pkg = tmp_path / "pkgs" / "schema7"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name in OLD:
        shutil.copy(Path(real.__file__).parent / f"{name}.py", pkg / f"{name}.py")
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    importlib.invalidate_caches()
    return "schema7"


def _row(conn, stream: str, seq: int | None, retained: int) -> None:
    conn.execute("INSERT INTO sync_outbox (space_id, topic, msg_id, type, stream, seq, retained, payload, created, "
                 "sent) VALUES ('s', ?, ?, 't', ?, ?, ?, x'7b7d', '2026-01-01T00:00:00.000Z', "
                 "'2026-01-01T00:00:01.000Z')", (stream, f"id-{stream}-{seq}", stream, seq, retained))


def test_an_old_outbox_keeps_counting_after_its_highest_seq(tmp_path, monkeypatch):
    path = tmp_path / "node.sqlite"
    old = Database.open(path, KEY, create=True, migrations=_schema7_package(tmp_path, monkeypatch))

    def write_old(c):
        for seq in (1, 2, 3):
            _row(c, "catalog/me/ds-1", seq, 1)
        _row(c, "inbox/peer", 7, 0)  # seqs 1-6 were purged long ago: their floor was kept
        c.execute("INSERT INTO sync_stream_out (space_id, stream, floor_seq) VALUES ('s', 'inbox/peer', 6)")
        c.execute("INSERT INTO sync_stream_out (space_id, stream, floor_seq) VALUES ('s', 'node/me/status', 40)")
        _row(c, "catalog/me/ds-1", None, 1)  # a clear has no seq

    old.write(write_old)
    old.close()
    with Database.open(path, KEY) as db:
        def next_seqs(c):
            return [outbox.next_seq(c, "s", s) for s in ("catalog/me/ds-1", "inbox/peer", "node/me/status", "new")]

        assert db.read(next_seqs) == [4, 8, 41, 1]
        taken = db.write(lambda c: [outbox.take_seq(c, "s", "catalog/me/ds-1"), outbox.take_seq(c, "s", "new")])
        assert taken == [4, 1]
        assert db.read(next_seqs) == [5, 8, 41, 2]
        index = db.read(lambda c: c.execute("SELECT sql FROM sqlite_master WHERE name = 'sync_outbox_stream'")
                        .fetchone()[0])
        assert "WHERE retained = 0" in index
        # a resend request finds the direct message, not the retained entries
        assert db.write(lambda c: outbox.requeue(c, "s", "inbox/peer", [7, 5])) == (1, [5])
        assert db.write(lambda c: outbox.requeue(c, "s", "catalog/me/ds-1", [1])) == (0, [1])
