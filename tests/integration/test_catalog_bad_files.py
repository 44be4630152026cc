"""Local files a user registers, however odd or damaged: each is read, or refused with the
project's own error naming what is wrong; never an unexpected exception. Real files, a real node."""

from __future__ import annotations

import pytest

from appliance.errors import ApplianceError, MalformedTable


@pytest.fixture
def data(tmp_path, node):
    folder = tmp_path / "data"
    folder.mkdir()
    node.resources.allowed_roots = [folder]
    return folder


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
