"""Local files a user registers: random and damaged bytes in every table format go through the real
registration path (scan, profile, sensitive scan, hosted copy, masked samples) into a real node, and
are read back (rows, masking preview). Each is registered, or refused with an ApplianceError (the
project's own errors: a clear message, its own exit code); anything else is a defect found."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.clock import FixedClock
from appliance.errors import ApplianceError
from appliance.node import Node
from appliance.storage import KdfParams
from tests.fuzz.values import deep, dump, floats, integers, raw_numbers, text
from tests.fuzzing import scaled

NAMES = itertools.count()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Node.init(tmp_path_factory.mktemp("local-files") / "node", b"fuzz passphrase", name="fuzz",
                  kdf=KdfParams.fast(), clock=FixedClock())
    data = tmp_path_factory.mktemp("data")
    n.resources.allowed_roots = [data]
    yield n, data
    n.close()


def registered_or_refused(node, suffix: str, content: bytes, mode: str = "referenced") -> None:
    n, data = node
    path = data / f"f{next(NAMES)}{suffix}"
    path.write_bytes(content)
    try:
        reg = n.resources.register(path, mode=mode)
        rid = reg.resource.id
        with n.resources.open_rows(rid) as rows:
            for _ in itertools.islice(rows, 2000):
                pass
        n.resources.mask_preview(rid)
        n.resources.samples(rid)
    except ApplianceError as e:
        assert e.message("en") and e.message("zh_CN")
    finally:
        path.unlink()


# --- CSV / TSV ------------------------------------------------------------------------------------

CELLS = ["a", "1", "-2.5", "2026-01-05", "2026-02-30 10:00", "张三", "13812345678", "", " ", '"', '""', '"q"',
         "1" * 5000, "9" * 20, "1e400", "NaN", "x" * 300]
CONTROL = [chr(i) for i in range(32)] + ["\x7f", "\x85", "\u2028", "\ufeff", "\ufffd"]
ENDS = ["\n", "\r\n", "\r", "\n\r", "\r\r\n"]
SEPARATORS = [",", "\t", ";", "|"]


@st.composite
def delimited_texts(draw) -> str:
    sep = draw(st.sampled_from(SEPARATORS))
    end = draw(st.sampled_from(ENDS))
    pieces = st.sampled_from(CELLS + CONTROL + SEPARATORS + ENDS)
    cell = st.sampled_from(CELLS) | st.lists(pieces, max_size=4).map("".join)
    rows = draw(st.lists(st.lists(cell, min_size=1, max_size=5), min_size=1, max_size=12))
    line_end = st.sampled_from(ENDS) if draw(st.booleans()) else st.just(end)
    return "".join(sep.join(r) + draw(line_end) for r in rows)


ENCODINGS = ["utf-8", "utf-8-sig", "gb18030", "utf-16", "utf-16-le"]


@st.composite
def delimited_files(draw) -> bytes:
    text = draw(delimited_texts())
    codec = draw(st.sampled_from(ENCODINGS))
    data = text.encode(codec, errors="replace")
    if draw(st.booleans()):  # damage: a few bytes changed, cut or put in
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(max_size=4)) + data[at + draw(st.integers(0, 3)):]
    return data


@scaled(200)
@given(content=delimited_files(), suffix=st.sampled_from([".csv", ".tsv"]))
def test_a_csv_or_tsv_file_is_registered_or_refused(node, content, suffix):
    registered_or_refused(node, suffix, content)


@scaled(60)
@given(content=delimited_files())
def test_a_hosted_csv_file_is_registered_or_refused(node, content):
    registered_or_refused(node, ".csv", content, mode="hosted")


@scaled(150)
@given(content=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv"]))
def test_random_bytes_as_csv_are_registered_or_refused(node, content, suffix):
    registered_or_refused(node, suffix, content)


# --- JSON and JSON Lines ----------------------------------------------------------------------------

JSON_PIECES = ["[", "]", "{", "}", ",", ":", '"', '"a"', "1", "1" * 5000, "-" + "9" * 4400, "1e400", "NaN", "null",
               " ", "\n", "\r", "\\", "\\ud800", "张", "\x00", "[" * 1000, '{"a":' * 1000]
# Values as tests.fuzz.values makes them, but text of at most a few hundred characters: the
# sensitive scan's e-mail pattern is quadratic in a long run of letters (a 20,000-letter cell
# takes 0.7 s), a known slowness, not what these tests look for.
leaves = st.none() | st.booleans() | integers | floats | text | raw_numbers | st.sampled_from(
    ["13812345678", "11010519491231002X", "a@b.cn", "2026-01-05", "x" * 300, "\x1f", "\r\n", "\ud800", "a\udfff"])
values = st.recursive(leaves, lambda children: st.lists(children, max_size=4)
                      | st.dictionaries(text, children, max_size=4), max_leaves=12)
records = st.dictionaries(st.sampled_from(["id", "name", "手机", "金额", "day", ""]) | text, values, max_size=5)
json_value_texts = (values | records | st.integers(30, 3000).map(deep)).map(dump)


@st.composite
def json_files(draw) -> bytes:
    if draw(st.booleans()):
        doc = draw(st.lists(records | values, max_size=6))
    else:
        doc = draw(values | st.dictionaries(text, st.lists(records, max_size=4), max_size=2))
    codec = draw(st.sampled_from(["utf-8", "utf-8", "gb18030", "utf-16", "utf-8-sig"]))
    data = dump(doc).encode(codec, "surrogatepass" if codec == "utf-8" else "replace")
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):  # damage: pieces of JSON put in anywhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(JSON_PIECES)).encode("utf-8", "surrogatepass") + data[at:]
    return data


@st.composite
def json_lines_files(draw) -> bytes:
    lines = draw(st.lists(json_value_texts | st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                          min_size=1, max_size=5))
    end = draw(st.sampled_from(["", "\n", "\r\n"]))
    codec = draw(st.sampled_from(["utf-8", "utf-8", "gb18030", "utf-16"]))
    text = "\n".join(line.replace("\n", " ") for line in lines) + end
    return text.encode(codec, "surrogatepass" if codec == "utf-8" else "replace")


@scaled(200)
@given(content=json_files())
def test_a_json_file_is_registered_or_refused(node, content):
    registered_or_refused(node, ".json", content)


@scaled(200)
@given(content=json_lines_files(), suffix=st.sampled_from([".jsonl", ".ndjson"]))
def test_a_json_lines_file_is_registered_or_refused(node, content, suffix):
    registered_or_refused(node, suffix, content)
