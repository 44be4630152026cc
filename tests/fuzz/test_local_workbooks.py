"""Excel workbooks a user registers: a genuine .xlsx with its bytes damaged, or with its sheet XML
changed (cut, pieces of XML and odd values put in), goes through the real registration path and
is read back. Each is registered, or refused with an ApplianceError; anything else is a defect."""

from __future__ import annotations

import io
import zipfile

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.test_local_files import node, registered_or_refused  # noqa: F401 - node is a fixture
from tests.fuzzing import scaled


def _genuine() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["客户", "手机", "金额", "日期"])
    wb.active.append(["张三", "13812345678", 12.5, "2026-01-05"])
    wb.active.append(["李四", "13912345678", 7, None])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


GENUINE = _genuine()
with zipfile.ZipFile(io.BytesIO(GENUINE)) as _z:
    PARTS = {name: _z.read(name) for name in _z.namelist()}
SHEET = "xl/worksheets/sheet1.xml"
XML_PIECES = [b"<", b">", b"</c>", b"<row>", b'<row r="1048576">', b'<c r="XFD1" t="n"><v>1</v></c>',
              b"<v>" + b"9" * 5000 + b"</v>", b"<v>1e400</v>", b"<v>x</v>", b'<c t="s"><v>99</v></c>',
              b'<c t="b"><v>2</v></c>', b'<c t="d"><v>not a date</v></c>', b"_xD800_", b"&#0;", b"&bogus;",
              b'<dimension ref="A1:XFD1048576" />', b"\x00", b"\xff", "张".encode()]


def _zipped(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, part in parts.items():
            z.writestr(name, part)
    return out.getvalue()


@st.composite
def changed_sheets(draw) -> bytes:
    name = draw(st.sampled_from([SHEET, SHEET, "xl/workbook.xml", "xl/styles.xml", "[Content_Types].xml"]))
    part = PARTS[name]
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(part)))
        inserted = draw(st.sampled_from(XML_PIECES) | st.binary(max_size=8))
        part = part[:at] + inserted + part[at + draw(st.integers(0, 20)):]
    return _zipped({**PARTS, name: part})


@st.composite
def damaged_bytes(draw) -> bytes:
    data = GENUINE
    if draw(st.booleans()):
        return data[: draw(st.integers(0, len(data)))]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at + draw(st.integers(0, 4)):]
    return data


@scaled(300)
@given(content=changed_sheets(), mode=st.sampled_from(["referenced", "hosted"]))
def test_a_workbook_with_changed_xml_is_registered_or_refused(node, content, mode):  # noqa: F811
    registered_or_refused(node, ".xlsx", content, mode)


@scaled(300)
@given(content=damaged_bytes())
def test_a_workbook_with_damaged_bytes_is_registered_or_refused(node, content):  # noqa: F811
    registered_or_refused(node, ".xlsx", content)
