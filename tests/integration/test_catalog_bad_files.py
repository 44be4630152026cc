"""Local files a user registers, however odd or damaged: each is read, or refused with the
project's own error naming what is wrong; never an unexpected exception. Real files, a real node."""

from __future__ import annotations

import json
import os

import pytest

from appliance.errors import MalformedTable, ResourceError, UnsupportedSource


def register(node, data, name: str, content: bytes, **kw):
    path = data / name
    path.write_bytes(content)
    return node.resources.register(path, **kw)


def all_rows(node, rid) -> list[list]:
    with node.resources.open_rows(rid) as rows:
        return list(rows)


# --- line ends ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["referenced", "hosted"])
def test_classic_mac_line_ends_are_line_ends(node, data, mode):
    reg = register(node, data, "mac.csv", b"a,b\r1,2\r3,4\r", mode=mode)
    assert [c.name for c in reg.version.columns] == ["a", "b"] and reg.version.row_count == 2
    assert all_rows(node, reg.resource.id) == [["1", "2"], ["3", "4"]]


def test_a_lone_cr_in_the_header_or_a_cell_ends_the_line(node, data):
    reg = register(node, data, "cr.csv", b"a\r,b\n1,2\n3,x\ry\n5,6\r\n")
    assert [c.name for c in reg.version.columns] == ["a"]  # the header line ends at the CR
    reg = register(node, data, "cr2.csv", b"a,b\n1,2\n3,x\ry\n5,6\r\n")
    assert reg.version.row_count == 3 and reg.version.skipped["first"] == [[4, "fields"]]  # "y" alone
    assert all_rows(node, reg.resource.id) == [["1", "2"], ["3", "x"], ["5", "6"]]


def test_tsv_with_cr_line_ends_and_quotes(node, data):
    reg = register(node, data, "mac.tsv", b'a\tb\r"x\r\ny"\t2\r3\t4')
    assert reg.version.row_count == 2
    assert all_rows(node, reg.resource.id)[1] == ["3", "4"]


# --- control characters ---------------------------------------------------------------------------


@pytest.mark.parametrize("char", [chr(i) for i in range(32) if chr(i) not in "\n\r"] + ["\x7f", "\x85", "\u2028"])
def test_control_characters_in_cells_are_read(node, data, char):
    content = f'id,note,amount\n1,a{char}b,2\n2,"{char}",3{char}\n3,x,{char}4\n'.encode()
    reg = register(node, data, f"ctl{ord(char)}.csv", content, mode="hosted")
    assert reg.version.row_count == 3
    rows = all_rows(node, reg.resource.id)
    assert rows[0] == ["1", f"a{char}b", "2"] and rows[2] == ["3", "x", f"{char}4"]
    node.resources.mask_preview(reg.resource.id)


def test_a_cell_holding_the_profilers_separator_is_text(node, data):
    lines = b"".join(b"%d,2026-01-%02d\n" % (i, i % 28 + 1) for i in range(20))
    reg = register(node, data, "unit.csv", b"amount,day\n1\x1f2,2026-01-01\x1f2026-01-02\n" + lines)
    amount, day = reg.version.columns  # one cell of 21 is not a number or a date, and not two of them
    assert (amount.type, amount.min, amount.max, amount.valid) == ("integer", "0", "19", 0.9524)
    assert (day.type, day.min, day.max) == ("date", "2026-01-01", "2026-01-20")


# --- deep nesting -----------------------------------------------------------------------------------


def nested(levels: int) -> str:
    objects, arrays = levels // 2, levels - levels // 2
    return '{"a": ' * objects + "[" * arrays + "1" + "]" * arrays + "}" * objects


@pytest.mark.parametrize("name, content", [
    ("open.json", "[" * 100_000),
    ("objects.json", '{"a":' * 100_000),
    ("element.json", "[1, " + "[" * 5000 + "]" * 5000 + "]"),
    ("doc.json", '{"rows": [' + nested(300) + "]}"),
    ("open.jsonl", '{"a": 1}\n' + "[" * 100_000 + "\n"),
    ("line.jsonl", '{"a": 1}\n{"b": ' + nested(250) + "}\n"),
])
def test_json_nested_too_deeply_is_refused(node, data, name, content):
    with pytest.raises(MalformedTable) as e:
        register(node, data, name, content.encode())
    assert "nest more than 200 levels" in e.value.message("en") and "嵌套超过 200 层" in e.value.message("zh_CN")
    assert not node.resources.list()


@pytest.mark.parametrize("name, content", [
    ("deep.json", "[" + nested(199) + ", 2]"),
    ("deep.jsonl", '{"a": ' + nested(199) + "}\n"),
])
def test_json_nested_up_to_the_limit_is_read(node, data, name, content):
    reg = register(node, data, name, content.encode(), mode="hosted")
    assert len(all_rows(node, reg.resource.id)) == reg.version.row_count


# --- numbers too large ------------------------------------------------------------------------------

HUGE = "1" * 5000


@pytest.mark.parametrize("name, content", [
    ("big.json", f'[{{"id": {HUGE}, "n": 1}}, {{"id": -{HUGE}, "n": 2}}]'),
    ("big_doc.json", f'{{"rows": [{{"id": {HUGE}, "n": 1}}]}}'),
    ("big.jsonl", f'{{"id": {HUGE}, "n": 1}}\n{{"id": 7, "n": 2}}\n'),
    ("big.csv", f"id,n\n{HUGE},1\n-{HUGE},2\n"),
])
def test_an_integer_of_thousands_of_digits_is_read_as_text(node, data, name, content):
    reg = register(node, data, name, content.encode(), mode="hosted")
    assert reg.version.columns[0].type == "text"
    first = all_rows(node, reg.resource.id)[0][0]
    assert str(first) == HUGE and reg.version.samples[0][0].startswith("111")


def test_a_number_too_large_for_a_float_does_not_end_the_profile(node, data):
    rows = '{"n": 1}\n' * 5000 + '{"n": "1e400"}\n{"n": "-1e999"}\n'  # two batches: integers, then infinities
    reg = register(node, data, "inf.jsonl", rows.encode())
    column = reg.version.columns[0]
    assert (column.type, column.min, column.max) == ("integer", "1", "1")


def test_surrogate_escapes_in_json_become_replacement_characters(node, data):
    reg = register(node, data, "s.json", b'[{"name": "a\\ud800b", "\\udc00": 1}, {"name": "\\ud83d\\ude00"}]',
                   mode="hosted")
    assert [c.name for c in reg.version.columns] == ["name", "\ufffd"]
    assert all_rows(node, reg.resource.id) == [["a\ufffdb", 1], ["\U0001F600", None]]


# --- damaged workbooks ------------------------------------------------------------------------------


def workbook(sheet_xml=None, extra: dict[str, bytes] | None = None) -> bytes:
    """A genuine .xlsx (columns a, b; one row), its sheet XML changed by ``sheet_xml``."""
    import io
    import zipfile

    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["a", "b"])
    wb.active.append([1, "x"])
    buf = io.BytesIO()
    wb.save(buf)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in zin.namelist():
            part = zin.read(name)
            z.writestr(name, sheet_xml(part) if sheet_xml and name.endswith("sheet1.xml") else part)
        for name, part in (extra or {}).items():
            z.writestr(name, part)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["referenced", "hosted"])
@pytest.mark.parametrize("name, content, words", [
    ("truncated.xlsx", workbook()[:900], "not a complete zip file"),
    ("half_sheet.xlsx", workbook(lambda x: x[: len(x) // 2]), "its sheet is damaged (ParseError)"),
    ("bad_number.xlsx", workbook(lambda x: x.replace(b"<v>1</v>", b"<v>1x</v>")), "its sheet is damaged"),
    ("huge_number.xlsx", workbook(lambda x: x.replace(b"<v>1</v>", b"<v>" + b"1" * 5000 + b"</v>")), "damaged"),
    ("bomb.xlsx", workbook(extra={"xl/media/pad.bin": bytes(80 << 20)}), "unpack to 80 MB"),
])
def test_a_damaged_workbook_is_refused(node, data, mode, name, content, words):
    with pytest.raises(MalformedTable) as e:
        register(node, data, name, content, mode=mode)
    assert words in e.value.message("en") and "工作" in e.value.message("zh_CN")
    assert not node.resources.list()


def test_a_sheet_claiming_every_cell_is_read_as_its_rows(node, data):
    claim = workbook(lambda x: x.replace(b'<dimension ref="A1:B2" />', b'<dimension ref="A1:XFD1048576" />'))
    reg = register(node, data, "claim.xlsx", claim)
    assert [c.name for c in reg.version.columns] == ["a", "b"] and all_rows(node, reg.resource.id) == [[1, "x"]]


# --- encodings of JSON ------------------------------------------------------------------------------

RECORDS = '[{"客户": "张三", "城市": "北京"}, {"客户": "李四", "城市": "上海"}]'


@pytest.mark.parametrize("mode", ["referenced", "hosted"])
@pytest.mark.parametrize("name, content, encoding", [
    ("gbk.json", RECORDS.encode("gbk"), "gb18030"),
    ("gb18030_doc.json", ('{"rows": ' + RECORDS + "}").encode("gb18030"), "gb18030"),
    ("gbk.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in json.loads(RECORDS)).encode("gbk"), "gb18030"),
    ("utf16.json", RECORDS.encode("utf-16"), "utf-16"),
    ("utf16.jsonl", "\r\n".join(json.dumps(r, ensure_ascii=False) for r in json.loads(RECORDS)).encode("utf-16"),
     "utf-16"),
    ("bom.json", b"\xef\xbb\xbf" + RECORDS.encode(), "utf-8-sig"),
])
def test_json_in_the_encodings_of_chinese_software_is_decoded(node, data, mode, name, content, encoding):
    reg = register(node, data, name, content, mode=mode)
    assert reg.version.encoding == encoding and [c.name for c in reg.version.columns] == ["客户", "城市"]
    assert all_rows(node, reg.resource.id) == [["张三", "北京"], ["李四", "上海"]]


@pytest.mark.parametrize("name", ["t.csv", "t.json", "t.jsonl"])
@pytest.mark.parametrize("encoding", ["no-such-codec", "rot13", "zlib", "\x00"])
def test_an_unknown_encoding_is_refused(node, data, name, encoding):
    with pytest.raises(ResourceError) as e:
        register(node, data, name, b'{"a": 1}\n', encoding=encoding)
    assert "no text encoding" in e.value.message("en") and "文本编码" in e.value.message("zh_CN")


# --- folders and names ----------------------------------------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="Windows file names are always Unicode")
@pytest.mark.parametrize("mode", ["referenced", "hosted"])
def test_a_file_name_that_is_not_utf8_is_skipped_in_a_folder_and_refused_alone(node, data, mode):
    folder = data / "share"
    folder.mkdir()
    (folder / "ok.txt").write_text("x")
    gbk_name = os.path.join(os.fsencode(folder), "订单.csv".encode("gbk"))
    with open(gbk_name, "wb") as f:
        f.write(b"a,b\n1,2\n")
    os.mkfifo(folder / "pipe")
    reg = node.resources.register(folder, mode=mode)
    assert [f["path"] for f in reg.version.files] == ["ok.txt"]
    assert reg.version.skipped["reasons"] == {"name is not UTF-8": 1, "not a regular file": 1}
    with pytest.raises(UnsupportedSource) as e:
        node.resources.register(os.fsdecode(gbk_name), mode=mode)
    assert "not UTF-8 text" in e.value.message("en") and "\\udcb6" in e.value.message("en")  # printable
