"""The backup file format, in memory: preamble, secretstream, and what damage looks like."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from appliance.errors import BackupInvalid, StoreFromFuture, WrongPassphrase
from appliance.storage.backup import (
    CHUNK_SIZE,
    _digest,
    check_key,
    decrypt_stream,
    encrypt_stream,
    preamble,
    read_preamble,
)
from appliance.storage.kdf import StoreHeader

PATH = Path("backup.dsb")
HEADER = StoreHeader(opslimit=1, memlimit=8192, salt=bytes(range(16)))
KEY = bytes(range(32))


def _pack(payload: bytes, key: bytes = KEY) -> bytes:
    ad = preamble(HEADER, key, created="2026-01-01T00:00:00.000Z", schema_version=3)
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(payload), out, key, ad)
    return out.getvalue()


def _unpack(blob: bytes, key: bytes = KEY) -> bytes:
    f = io.BytesIO(blob)
    pre = read_preamble(f, PATH)
    check_key(pre, key)
    out = io.BytesIO()
    decrypt_stream(f, out, pre, key, PATH)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE])
def test_round_trip_at_chunk_boundaries(size):
    payload = random.Random(size).randbytes(size)
    assert _unpack(_pack(payload)) == payload


def test_preamble_is_readable_json_with_the_store_header():
    blob = _pack(b"x")
    first = blob.split(b"\n", 1)[0]
    meta = json.loads(first)
    assert meta["format"] == "dsnode-backup"
    assert meta["version"] == 2
    assert meta["schema_version"] == 3
    assert meta["created"] == "2026-01-01T00:00:00.000Z"
    assert StoreHeader.from_json(meta["store"]) == HEADER


@pytest.mark.parametrize("version", [1, 2])
def test_both_format_versions_are_readable(version):
    ad = preamble(HEADER, KEY, created="2026-01-01T00:00:00.000Z", schema_version=3, version=version)
    assert read_preamble(io.BytesIO(ad), PATH).version == version


@pytest.mark.parametrize("version", [0, 3, "2", None])
def test_other_format_versions_are_refused(version):
    ad = preamble(HEADER, KEY, created="2026-01-01T00:00:00.000Z", schema_version=3, version=version)
    with pytest.raises(BackupInvalid, match="not supported"):
        read_preamble(io.BytesIO(ad), PATH)


def test_payload_is_not_in_the_file():
    payload = "敏感客户数据-XYZ-12345".encode() * 100
    assert b"XYZ-12345" not in _pack(payload)


def test_wrong_key_is_wrong_passphrase():
    with pytest.raises(WrongPassphrase):
        _unpack(_pack(b"data"), key=bytes(32))


def test_every_flipped_byte_is_detected():
    payload = random.Random(1).randbytes(2 * CHUNK_SIZE + 100)
    blob = _pack(payload)
    preamble_len = blob.index(b"\n", blob.index(b"\n") + 1) + 1
    positions = list(range(preamble_len + 40)) + random.Random(2).sample(range(len(blob)), 200) + [len(blob) - 1]
    for pos in positions:
        damaged = bytearray(blob)
        damaged[pos] ^= 0x01
        with pytest.raises(BackupInvalid):
            _unpack(bytes(damaged))


@pytest.mark.parametrize("cut", [1, 17, 1000, CHUNK_SIZE + 17, CHUNK_SIZE + 41])
def test_truncation_is_detected(cut):
    blob = _pack(random.Random(3).randbytes(2 * CHUNK_SIZE + 100))
    with pytest.raises(BackupInvalid):
        _unpack(blob[:-cut])


def test_truncation_at_a_chunk_boundary_is_detected():
    blob = _pack(random.Random(4).randbytes(2 * CHUNK_SIZE))  # ends with an empty FINAL chunk
    with pytest.raises(BackupInvalid, match="truncated") as refused:
        _unpack(blob[: -17])
    assert "它不完整（数据末尾缺失）" in refused.value.message("zh_CN")


@pytest.mark.parametrize("size", [4, CHUNK_SIZE])
def test_trailing_data_is_detected(size):
    with pytest.raises(BackupInvalid):
        _unpack(_pack(bytes(size)) + b"\x00")


@pytest.mark.parametrize("junk", [b"", b"hello\n", b"SQLite format 3\x00" + bytes(100), b"{}\n" + bytes(70)])
def test_junk_is_not_a_backup(junk):
    with pytest.raises(BackupInvalid):
        _unpack(junk)


def test_a_forged_header_with_a_matching_digest_still_fails():
    blob = _pack(b"data")
    line, rest = blob.split(b"\n", 1)
    meta = json.loads(line)
    meta["schema_version"] = 2
    forged = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    damaged = forged + b"\n" + _digest(forged) + b"\n" + rest.split(b"\n", 1)[1]
    with pytest.raises(BackupInvalid, match="authentication failed") as refused:
        _unpack(damaged)
    assert refused.value.message("zh_CN") == (
        "备份文件 backup.dsb 无法使用：它的内容已损坏或被改动（认证失败）。未恢复任何内容；请改用该备份的另一份副本。")


def test_a_newer_store_header_inside_is_from_the_future():
    blob = _pack(b"data")
    line = blob.split(b"\n", 1)[0]
    meta = json.loads(line)
    meta["store"]["version"] = 9
    forged = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(StoreFromFuture):
        read_preamble(io.BytesIO(forged + b"\n" + _digest(forged) + b"\n"), PATH)


def test_each_backup_uses_a_fresh_stream_nonce():
    assert _pack(b"same") != _pack(b"same")
