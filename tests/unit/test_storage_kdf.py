"""KDF parameters, key derivation and the plaintext store header."""

from __future__ import annotations

import json
import stat

import pytest

from appliance.errors import StoreCorrupt, StoreFromFuture, StoreNotFound
from appliance.storage.kdf import KdfParams, StoreHeader, derive_key, read_header, write_header

SALT = bytes(range(16))


def test_derive_key_is_deterministic_32_bytes_and_depends_on_everything():
    fast = KdfParams.fast()
    key = derive_key(b"correct horse", SALT, fast)
    assert len(key) == 32
    assert key == derive_key(b"correct horse", SALT, fast)
    assert key != derive_key(b"correct horsf", SALT, fast)
    assert key != derive_key(b"correct horse", bytes(16), fast)
    assert key != derive_key(b"correct horse", SALT, KdfParams(opslimit=2, memlimit=fast.memlimit))


def test_derive_key_rejects_bad_input():
    with pytest.raises(ValueError):
        derive_key(b"x", b"short", KdfParams.fast())
    with pytest.raises(TypeError):
        derive_key("text", SALT, KdfParams.fast())


def test_params_profiles_and_bounds():
    assert KdfParams.default() == KdfParams(opslimit=3, memlimit=256 * 1024 * 1024)
    assert KdfParams.fast() == KdfParams(opslimit=1, memlimit=8192)
    with pytest.raises(ValueError):
        KdfParams(opslimit=0, memlimit=8192)
    with pytest.raises(ValueError):
        KdfParams(opslimit=1, memlimit=1024)
    with pytest.raises(ValueError):
        KdfParams(opslimit=1, memlimit=64 * 1024**3)


def test_header_round_trip_is_private_and_leaves_no_temp_file(tmp_path):
    header = StoreHeader.new(KdfParams.fast())
    path = tmp_path / "node.header"
    write_header(path, header)
    assert read_header(path) == header
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["node.header"]
    data = json.loads(path.read_text())
    assert data == {"format": "dsnode-store", "version": 1, "kdf": "argon2id13", "opslimit": 1,
                    "memlimit": 8192, "salt": header.salt.hex()}
    assert header.salt.hex() not in repr(header)


def test_headers_get_fresh_salts():
    assert StoreHeader.new(KdfParams.fast()).salt != StoreHeader.new(KdfParams.fast()).salt


def test_rewriting_a_header_replaces_it(tmp_path):
    path = tmp_path / "node.header"
    write_header(path, StoreHeader.new(KdfParams.fast()))
    second = StoreHeader.new(KdfParams.fast())
    write_header(path, second)
    assert read_header(path) == second


def test_missing_header(tmp_path):
    with pytest.raises(StoreNotFound):
        read_header(tmp_path / "node.header")


def _good() -> dict:
    return StoreHeader.new(KdfParams.fast()).to_json()


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({**_good(), "format": "borg"}).encode(), "not a dsnode store header"),
        (json.dumps({**_good(), "version": "1"}).encode(), "version"),
        (json.dumps({**_good(), "kdf": "scrypt"}).encode(), "unknown key derivation"),
        (json.dumps({**_good(), "salt": "abcd"}).encode(), "salt is 2 bytes"),
        (json.dumps({**_good(), "salt": "zz" * 16}).encode(), "not hexadecimal"),
        (json.dumps({k: v for k, v in _good().items() if k != "memlimit"}).encode(), "missing"),
        (json.dumps({**_good(), "memlimit": 2**45}).encode(), "memlimit"),
    ],
)
def test_malformed_header_is_store_corrupt_with_a_clear_detail(tmp_path, content, detail):
    path = tmp_path / "node.header"
    path.write_bytes(content)
    with pytest.raises(StoreCorrupt) as err:
        read_header(path)
    assert detail in str(err.value)
    assert str(path) in str(err.value)


def test_header_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "node.header"
    path.write_text(json.dumps({**_good(), "version": 2}))
    with pytest.raises(StoreFromFuture) as err:
        read_header(path)
    assert "header 2" in str(err.value)
