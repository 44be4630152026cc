"""Reading tables from real files: encodings, bad lines, quoting, every format, bounded memory."""

import hashlib
import json
import sqlite3
import tracemalloc

import pytest

from appliance.errors import MalformedTable
from appliance.services.catalog import readers
from appliance.services.catalog.delimited import DelimitedScanner

HEADER = "订单号,客户,手机,金额,日期\n"


def rows(n: int, start: int = 0) -> str:
    return "".join(f"{i},客户{i % 50},1381234{i % 10000:04d},{i % 997}.5,2026-{i % 12 + 1:02d}-15\n"
                   for i in range(start, start + n))


def scan(path, **kw):
    return DelimitedScanner(path, **kw).run()


def test_gbk_csv_is_decoded_and_hashed_over_its_bytes(tmp_path):
    path = tmp_path / "订单.csv"
    data = (HEADER + rows(300)).encode("gbk")
    path.write_bytes(data)
    r = scan(path)
    assert r.encoding == "gb18030" and r.rows == 300 and r.columns[:2] == ["订单号", "客户"]
    assert r.sha256 == hashlib.sha256(data).hexdigest() and r.size == len(data)
    assert [c.type for c in r.profile.columns] == ["integer", "text", "integer", "decimal", "date"]


def test_bom_crlf_and_tsv(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + rows(5)).replace(",", "\t").replace("\n", "\r\n").encode())
    r = scan(path, delimiter="\t")
    assert r.columns[0] == "订单号" and r.rows == 5 and r.encoding == "utf-8-sig"
    assert r.profile.columns[-1].max == "2026-05-15"  # no "\r" left on the last column


def test_undecodable_lines_are_skipped_with_their_numbers(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes((HEADER + rows(10)).encode("utf-8") + "11,老客户,13800000000,1,2026-01-01\n".encode("gbk")
                     + rows(5, 12).encode("utf-8"))
    r = scan(path)
    assert r.rows == 15 and r.skipped.count == 1
    assert r.skipped.first == [(12, "encoding")] and r.profile.quality["integrity"] < 1


def test_lines_with_the_wrong_number_of_fields_are_skipped(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + rows(3) + "99,太多,字段,1,2,3\n" + "\n" + rows(2, 3) + "98,太少\n", encoding="utf-8")
    r = scan(path)
    assert r.rows == 5 and r.skipped.first == [(5, "fields"), (9, "fields")]


def test_quoted_fields_with_delimiters_and_line_breaks(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id,地址,备注\n1,"上海市,浦东新区","第一行\n第二行"\n2,"北京市",""\n3,"x ""引号"" y",ok\n',
                    encoding="utf-8")
    r = scan(path)
    assert r.rows == 3 and not r.skipped.count
    assert r.profile.samples[0] == ["1", "上海市,浦东新区", "第一行\n第二行"]


def test_a_quote_that_is_never_closed_is_a_clear_error(tmp_path):
    path = tmp_path / "open.csv"
    path.write_text('id,备注\n1,"从这里开始\n' + "2,x\n" * 1000, encoding="utf-8")
    with pytest.raises(MalformedTable, match="never closed"):
        scan(path)


def test_an_empty_file_and_a_file_without_a_final_newline(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(MalformedTable, match="empty"):
        scan(tmp_path / "empty.csv")
    (tmp_path / "tail.csv").write_text(HEADER + rows(2).rstrip("\n"), encoding="utf-8")
    assert scan(tmp_path / "tail.csv").rows == 2
    (tmp_path / "head.csv").write_text("a,b", encoding="utf-8")
    assert scan(tmp_path / "head.csv").rows == 0


def test_large_files_are_profiled_on_a_spread_sample_but_counted_exactly(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text(HEADER + rows(60_000), encoding="utf-8")
    r = scan(path, exact_bytes=0, sample_bytes=200_000, block_size=1 << 20)
    q = r.profile.quality
    assert r.rows == 60_000 and q["rows"] == 60_000 and q["sampled"]
    assert 0 < q["profiled_rows"] < 0.6 * r.rows  # the first 1 MiB piece and ~200 kB spread over the rest
    assert int(r.profile.columns[0].max) > 45_000  # the sample reaches the last piece of the file


def _peak(path) -> int:
    tracemalloc.start()
    try:
        scan(path, exact_bytes=0, sample_bytes=64 * 1024, block_size=256 * 1024)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_file(tmp_path):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_text(HEADER + rows(40_000), encoding="utf-8")  # ~2 MB
    with open(large, "w", encoding="utf-8") as f:  # ~20 MB
        f.write(HEADER)
        for start in range(0, 400_000, 40_000):
            f.write(rows(40_000, start))
    peak_small, peak_large = _peak(small), _peak(large)
    assert peak_large < peak_small * 1.5 + 2 * 1024 * 1024, (peak_small, peak_large)


# --- other formats -------------------------------------------------------------------------------


def read_all(src: readers.RowSource) -> list[list]:
    with src:
        return [src.columns, *src]


def test_json_lines_and_json_arrays(tmp_path):
    records = [{"id": i, "名称": f"产品{i}", "tags": ["a", "b"]} for i in range(3)]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\n")
    (tmp_path / "a.json").write_text(json.dumps(records, ensure_ascii=False, indent=2))
    (tmp_path / "o.json").write_text(json.dumps({"meta": 1, "data": records}, ensure_ascii=False))
    for name, fmt in (("a.jsonl", "jsonl"), ("a.json", "json"), ("o.json", "json")):
        got = read_all(readers.open_rows(tmp_path / name, fmt))
        assert got[0] == ["id", "名称", "tags"] and got[1] == [0, "产品0", '["a", "b"]'] and len(got) == 4


def test_a_large_json_array_is_parsed_element_by_element(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps({"n": i, "s": "x" * 100}) for i in range(30_000)) + "\n]")
    src = readers.open_rows(path, "json")
    count = sum(1 for _ in src)
    src.close()
    assert count == 30_000


def test_broken_json_is_reported(tmp_path):
    (tmp_path / "b.json").write_text('[{"a": 1}, {"a": ')
    with pytest.raises(MalformedTable):
        read_all(readers.open_rows(tmp_path / "b.json", "json"))
    (tmp_path / "b.jsonl").write_text('{"a": 1}\n{oops}\n')
    with pytest.raises(MalformedTable, match="line 2"):
        read_all(readers.open_rows(tmp_path / "b.jsonl", "jsonl"))


def test_xlsx_first_sheet_or_named_sheet(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "订单"
    ws.append(["编号", "金额"])
    ws.append([1, 9.5])
    ws.append([2, None])
    wb.create_sheet("其他").append(["x"])
    wb.save(tmp_path / "w.xlsx")
    assert read_all(readers.open_rows(tmp_path / "w.xlsx", "xlsx")) == [["编号", "金额"], [1, 9.5], [2, None]]
    assert read_all(readers.open_rows(tmp_path / "w.xlsx", "xlsx", table="其他")) == [["x"]]
    with pytest.raises(MalformedTable, match="no sheet"):
        readers.open_rows(tmp_path / "w.xlsx", "xlsx", table="nope")


def test_sqlite_tables_are_read_only(tmp_path):
    db = tmp_path / "erp.db"
    conn = sqlite3.connect(db)
    conn.execute('CREATE TABLE "客户 表" (id INTEGER, name TEXT)')
    conn.executemany('INSERT INTO "客户 表" VALUES (?, ?)', [(1, "甲"), (2, "乙")])
    conn.commit()
    conn.close()
    before = db.read_bytes()
    assert read_all(readers.open_rows(db, "sqlite", table="客户 表")) == [["id", "name"], [1, "甲"], [2, "乙"]]
    assert db.read_bytes() == before
    with pytest.raises(MalformedTable, match="客户 表"):
        readers.open_rows(db, "sqlite", table="orders; DROP TABLE x")


def test_utf16_tables_are_read_streaming_and_rows_of_empty_cells_count(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("名称,数量\n甲,1\n,\n乙,2\n", encoding="utf-16")
    r = scan(path)
    assert r.encoding == "utf-16" and r.rows == 3 and r.profile.columns[0].nulls == 1
    assert read_all(readers.open_rows(path, "csv")) == [["名称", "数量"], ["甲", "1"], ["", ""], ["乙", "2"]]
