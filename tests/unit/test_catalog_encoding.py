"""Encoding detection on the encodings Chinese SMEs' files come in."""

import codecs

import pytest

from appliance.services.catalog.encoding import byte_oriented, chunk_codec, detect

TEXT = ("客户名称,联系电话,金额,备注\n"
        "上海某某精密机械有限公司,13812345678,1200.50,已付款\n"
        "深圳某某科技公司,13912345678,88.00,待发货\n")


def test_utf8():
    d = detect(TEXT.encode("utf-8"), complete=True)
    assert (d.encoding, d.bom) == ("utf-8", 0)


def test_utf8_with_bom():
    d = detect(codecs.BOM_UTF8 + TEXT.encode("utf-8"), complete=True)
    assert (d.encoding, d.bom, chunk_codec(d.encoding)) == ("utf-8-sig", 3, "utf-8")


@pytest.mark.parametrize("codec", ["gbk", "gb2312", "gb18030"])
def test_gb_family_is_read_as_gb18030(codec):
    d = detect(TEXT.encode(codec), complete=True)
    assert d.encoding == "gb18030"
    assert (TEXT.encode(codec)).decode(d.encoding) == TEXT


def test_gb18030_four_byte_characters():
    text = TEXT + "𠮷野家,13700000000,1,生僻字\n"  # 𠮷 is outside GBK: four bytes in GB18030
    data = text.encode("gb18030")
    assert detect(data, complete=True).encoding == "gb18030"


def test_a_sample_cut_inside_a_character_is_still_utf8():
    data = (TEXT * 50).encode("utf-8")
    cut = data[: len(data) // 2 + 1]  # most likely inside a three-byte character
    assert detect(cut).encoding == "utf-8"


def test_utf16_with_bom_is_transcoded_not_split_by_bytes():
    d = detect(TEXT.encode("utf-16"), complete=True)
    assert d.encoding == "utf-16" and not byte_oriented(d.encoding)
    assert byte_oriented("gb18030") and byte_oriented("utf-8")


def test_mixed_file_is_utf8_when_its_start_is():
    data = TEXT.encode("utf-8") * 20 + "尾部是 GBK 的一行\n".encode("gbk")
    assert detect(data[:1000]).encoding == "utf-8"
