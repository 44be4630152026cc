"""The first two lines of a backup file (its JSON header and the digest of it), as a damaged or a
crafted file has them: a genuine header with one field changed to any JSON value and a matching
digest written, any bytes with a matching digest, or damaged bytes. Each is read or refused with
BackupInvalid (or StoreFromFuture for a header from a newer dsnode); nothing else comes out."""

from __future__ import annotations

import io
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from appliance.errors import BackupInvalid, StoreFromFuture
from appliance.storage import KdfParams, backup
from appliance.storage.kdf import StoreHeader
from tests.fuzz.values import dump, json_texts, json_values, mutations
from tests.fuzzing import scaled

KEY = bytes(range(32))
GENUINE = backup.preamble(StoreHeader.new(KdfParams.fast()), KEY, created="2026-01-01T00:00:00Z", schema_version=7)
META = json.loads(GENUINE.split(b"\n")[0])
PATH = Path("box.backup")


def signed(line: bytes) -> bytes:
    """``line`` as a header line, followed by its matching digest."""
    line = line.replace(b"\n", b" ")
    return line + b"\n" + backup._digest(line) + b"\n"


def _read_or_refused(data: bytes) -> None:
    try:
        pre = backup.read_preamble(io.BytesIO(data + b"stream"), PATH)
    except (BackupInvalid, StoreFromFuture) as e:
        assert e.message("en") and e.message("zh_CN")
        return
    assert pre.version in backup.READABLE_VERSIONS and 1024 <= pre.chunk_size and isinstance(pre.keycheck, str)


def test_the_genuine_preamble_is_read():
    assert backup.read_preamble(io.BytesIO(GENUINE), PATH).schema_version == 7


@scaled(600)
@given(meta=mutations(META, json_values(8)))
def test_a_header_with_a_field_changed_is_read_or_refused(meta):
    _read_or_refused(signed(dump(meta).encode("utf-8", "surrogatepass")))


@scaled(600)
@given(line=json_texts())
def test_any_json_text_with_a_matching_digest_is_refused(line):
    _read_or_refused(signed(line))


@scaled(600)
@given(data=st.data())
def test_damaged_bytes_are_refused(data):
    raw = GENUINE
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] + data.draw(st.binary(max_size=6)) + raw[at + data.draw(st.integers(0, 6)):]
    _read_or_refused(raw[: data.draw(st.integers(0, len(raw)))] if data.draw(st.booleans()) else raw)
