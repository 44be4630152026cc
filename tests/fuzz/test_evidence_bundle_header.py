"""The header line of an evidence bundle file, as a damaged or a crafted bundle has it: a genuine
header with one field changed to any JSON value, any JSON text, or damaged bytes; and bundle files
of any bytes. Verifying each either succeeds or raises BundleInvalid naming the problem; nothing
else comes out. (A change to a field no signature covers, such as the ``created`` time of the
first key record, still verifies.)"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.clock import FixedClock
from appliance.errors import BundleInvalid
from appliance.node import Node
from appliance.services.evidence_bundle import verify_bundle
from appliance.storage import KdfParams
from tests.fuzz.values import dump, json_texts, json_values, mutations
from tests.fuzzing import scaled

NAMES = itertools.count()


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    node = Node.init(folder / "node", b"fuzz passphrase", name="fuzz", kdf=KdfParams.fast(), clock=FixedClock())
    try:
        data = folder / "data"
        data.mkdir()
        node.resources.allowed_roots = [data]
        (data / "a.csv").write_bytes(b"a,b\n1,2\n")
        rid = node.resources.register(data / "a.csv").resource.id
        node.resources.update(rid, title="t2")
        bundle = folder / "subject.jsonl"
        node.export_evidence(bundle, subject=rid)
    finally:
        node.close()
    lines = bundle.read_bytes().split(b"\n")
    return folder, json.loads(lines[0]), b"\n".join(lines[1:])


def _verified_or_refused(folder, content: bytes) -> bool:
    path = folder / f"b{next(NAMES)}.jsonl"
    path.write_bytes(content)
    try:
        verify_bundle(path)
    except BundleInvalid as e:
        assert e.message("en") and e.message("zh_CN")
        return False
    finally:
        path.unlink()
    return True


def test_the_genuine_bundle_verifies(genuine):
    folder, header, rest = genuine
    assert _verified_or_refused(folder, json.dumps(header).encode() + b"\n" + rest)


@scaled(600)
@given(data=st.data())
def test_a_header_with_a_field_changed_is_refused(genuine, data):
    folder, header, rest = genuine
    changed = data.draw(mutations(header, json_values(8)))
    line = dump(changed).encode("utf-8", "surrogatepass").replace(b"\n", b" ")
    _verified_or_refused(folder, line + b"\n" + rest)


@scaled(400)
@given(line=json_texts())
def test_any_header_line_is_refused(genuine, line):
    folder, _, rest = genuine
    _verified_or_refused(folder, line.replace(b"\n", b" ") + b"\n" + rest)


@scaled(300)
@given(data=st.data())
def test_damaged_bytes_are_refused(genuine, data):
    folder, header, rest = genuine
    raw = json.dumps(header).encode() + b"\n" + rest
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] + data.draw(st.binary(max_size=6)) + raw[at + data.draw(st.integers(0, 6)):]
    _verified_or_refused(folder, raw)
