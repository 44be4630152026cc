"""Encrypted store: the node's write and indexed-read workload, SQLCipher against plain SQLite."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from appliance.storage import Database, KdfParams, StoreHeader
from bench.harness import Result, rnd

DESCRIPTION = "encrypted store vs plain SQLite (same API, same workload): writes, indexed reads, unlock time"

KINDS = ("file", "table", "folder", "api", "sqlite_table")


def _record(i: int) -> tuple:
    meta = {"columns": [f"col_{c}" for c in range(12)], "rows": i * 13, "encoding": "GB18030",
            "description": "产线传感器数据，每分钟更新" * 3}
    return (f"urn:dsnode:resource:{i:08d}", KINDS[i % len(KINDS)], f"数据资源 {i}", "did:key:z6MkOwner",
            i * 1024, hashlib.sha256(str(i).encode()).digest(), json.dumps(meta, ensure_ascii=False),
            f"2026-11-{1 + i % 28:02d}T10:00:{i % 60:02d}.000Z")


INSERT = "INSERT INTO record (urn, kind, title, owner, size, sha256, meta, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def _write_one(db: Database, i: int) -> None:
    def work(conn):
        rid = conn.execute(INSERT, _record(i)).lastrowid
        conn.execute("INSERT INTO event (record_id, action, ts) VALUES (?, 'registered', '2026-11-22T10:00:00.000Z')",
                     (rid,))

    db.write(work)


def _write_batch(db: Database, start: int, count: int) -> None:
    db.write(lambda conn: conn.executemany(INSERT, [_record(i) for i in range(start, start + count)]))


def _point_read(db: Database, i: int):
    return db.read(lambda c: c.execute("SELECT id, title, meta FROM record WHERE urn = ?",
                                       (f"urn:dsnode:resource:{i:08d}",)).fetchone())


def _range_read(db: Database, i: int):
    return db.read(lambda c: c.execute(
        "SELECT id, urn, title FROM record WHERE kind = ? AND updated >= ? ORDER BY updated LIMIT 20",
        (KINDS[i % len(KINDS)], f"2026-11-{1 + i % 28:02d}")).fetchall())


def _workload(db: Database, *, singles: int, preload: int, reads: int, seed: int) -> dict:
    """Per-operation microseconds for each part of the workload."""
    rng = random.Random(seed)
    t = time.perf_counter()
    for start in range(0, preload, 1000):
        _write_batch(db, start, min(1000, preload - start))
    batch_us = (time.perf_counter() - t) / preload * 1e6
    t = time.perf_counter()
    for i in range(preload, preload + singles):
        _write_one(db, i)
    single_us = (time.perf_counter() - t) / singles * 1e6
    keys = [rng.randrange(preload) for _ in range(reads)]
    timings = {}
    for phase in ("cold", "warm"):  # first touch decrypts pages into the cache; then they are cached
        t = time.perf_counter()
        for k in keys:
            assert _point_read(db, k) is not None
        timings[f"point_{phase}"] = (time.perf_counter() - t) / reads * 1e6
        t = time.perf_counter()
        for k in keys[: reads // 4]:
            _range_read(db, k)
        timings[f"range_{phase}"] = (time.perf_counter() - t) / (reads // 4) * 1e6
    return {"write_txn_us": rnd(single_us, 1), "batched_write_row_us": rnd(batch_us, 2),
            "point_read_us": rnd(timings["point_warm"], 2), "range_read_us": rnd(timings["range_warm"], 2),
            "point_read_cold_us": rnd(timings["point_cold"], 2), "range_read_cold_us": rnd(timings["range_cold"], 2)}


def _run_side(work: Path, *, plain: bool, sizes: dict, rounds: int) -> dict:
    """Best (lowest) of ``rounds`` runs per figure: the least disturbed by the noisy machine."""
    best: dict = {}
    for r in range(rounds):
        path = Path(tempfile.mkdtemp(dir=work)) / f"{'plain' if plain else 'enc'}.sqlite"
        db = Database.open(path, None if plain else os.urandom(32), create=True, plain=plain,
                           migrations="bench.store_schema")
        try:
            figures = _workload(db, seed=r, **sizes)
        finally:
            db.close()
        best = {k: min(v, best.get(k, v)) for k, v in figures.items()}
    return best


def run(quick: bool, say) -> Result:
    sizes = ({"singles": 500, "preload": 20_000, "reads": 4_000} if quick
             else {"singles": 3_000, "preload": 200_000, "reads": 40_000})
    rounds = 2 if quick else 3
    work = Path(tempfile.mkdtemp(prefix="dsnode-bench-store-"))
    try:
        say(f"workload: {sizes['preload']:,} batched inserts, {sizes['singles']:,} single-row write "
            f"transactions (synchronous=FULL), {sizes['reads']:,} indexed point reads cold then warm; best of {rounds}")
        results = {}
        for plain in (True, False, True, False):  # interleaved, so drift hits both sides alike
            side = "plain" if plain else "encrypted"
            say(f"  running {side}…")
            got = _run_side(work, plain=plain, sizes=sizes, rounds=max(1, rounds // 2))
            results[side] = {k: min(v, results.get(side, {}).get(k, v)) for k, v in got.items()}
        say("unlocking: Argon2id (default profile) and open with the raw key…")
        header = StoreHeader.new(KdfParams.default())
        t = time.perf_counter()
        key = header.derive_key(b"benchmark passphrase")
        kdf_s = time.perf_counter() - t
        path = work / "unlock.sqlite"
        Database.open(path, key, create=True, migrations="bench.store_schema").close()
        t = time.perf_counter()
        Database.open(path, key, migrations="bench.store_schema").close()
        open_ms = (time.perf_counter() - t) * 1000
    finally:
        shutil.rmtree(work, ignore_errors=True)
    enc, plain = results["encrypted"], results["plain"]
    ratio = {k: rnd(enc[k] / plain[k], 2) for k in enc}
    for k in enc:
        say(f"  {k:<22} encrypted {enc[k]:>9} µs   plain {plain[k]:>9} µs   ×{ratio[k]}")
    say(f"  unlock: KDF {kdf_s * 1000:.0f} ms + open {open_ms:.1f} ms")
    main = {"writes": max(ratio["write_txn_us"], ratio["batched_write_row_us"]),
            "indexed_reads": max(ratio["point_read_us"], ratio["range_read_us"])}
    return Result(
        figures={"encrypted": enc, "unlock_kdf_ms": rnd(kdf_s * 1000, 1), "unlock_open_ms": rnd(open_ms, 2)},
        baseline={"plain_sqlite": plain},
        ratio={**main, "detail": ratio},
        target="encrypted <= 1.5x plain SQLite for writes and (warm-cache) indexed reads",
        met={k: v <= 1.5 for k, v in main.items()},
    )
