"""`dsnode` given odd or damaged local files, as a user runs it: each is read, or refused in one
clear line with its own exit code; never the internal error (exit code 70)."""

from __future__ import annotations

import json
import os

import pytest

INTERNAL_ERROR = 70


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def run(cli, data, *args):
    proc = cli.run(*args, ok=False, env=cli.env(DSNODE_ALLOWED_ROOTS=str(data)))
    assert proc.returncode != INTERNAL_ERROR and "Traceback" not in proc.stderr, proc.stderr
    return proc


def add(cli, data, name: str, content: bytes, *args):
    (data / name).write_bytes(content)
    return run(cli, data, "resource", "add", str(data / name), *args)


def refused(proc, code: int, *words: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code and len(lines) == 1, proc.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_a_csv_with_classic_mac_line_ends_is_read(initialised, data):
    proc = add(initialised, data, "mac.csv", b"name,amount\rA,1\rB,2\r")
    assert proc.returncode == 0 and "2 rows, 2 columns" in proc.stdout, proc.stderr


def test_a_csv_with_control_characters_in_cells_is_read(initialised, data):
    proc = add(initialised, data, "ctl.csv", b"name,amount\nA\x00B,1\x1f\n\x1b[31mC,2\n", "--hosted")
    assert proc.returncode == 0 and "2 rows, 2 columns" in proc.stdout, proc.stderr


def test_json_nested_too_deeply_is_refused_clearly(initialised, data):
    refused(add(initialised, data, "deep.json", b"[" * 100_000), 65, "deep.json", "nest more than 200 levels deep")
    proc = add(initialised, data, "deep.jsonl", b'{"a": 1}\n' + b'{"a":' * 100_000 + b"\n", "--lang", "zh_CN")
    refused(proc, 65, "第 2 行", "嵌套超过 200 层")


def test_numbers_too_large_are_read(initialised, data):
    huge = b"9" * 5000
    proc = add(initialised, data, "big.json", b'[{"id": ' + huge + b', "v": "1e400"}, {"id": 1, "v": "2"}]')
    assert proc.returncode == 0 and "2 rows, 2 columns" in proc.stdout, proc.stderr
    proc = add(initialised, data, "big.csv", b"id,v\n" + huge + b",1e400\n" + b"1,2\n" * 5000 + b"3,-1e999\n")
    assert proc.returncode == 0 and "5002 rows, 2 columns" in proc.stdout, proc.stderr


def test_a_damaged_workbook_is_refused_clearly(initialised, data):
    import io
    import zipfile

    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["name", "amount"])
    wb.active.append(["A", 1])
    buf = io.BytesIO()
    wb.save(buf)
    good = buf.getvalue()
    refused(add(initialised, data, "cut.xlsx", good[: len(good) // 2]), 65, "cut.xlsx", "not a complete zip file")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as zin, zipfile.ZipFile(out, "w") as z:
        for name in zin.namelist():
            part = zin.read(name)
            z.writestr(name, part[: len(part) // 2] if name.endswith("sheet1.xml") else part)
    refused(add(initialised, data, "broken.xlsx", out.getvalue(), "--lang", "zh_CN"), 65, "工作表已损坏")


def test_a_gbk_json_file_is_decoded_and_an_unknown_encoding_refused(initialised, data):
    records = '[{"客户": "张三", "城市": "北京"}, {"客户": "李四", "城市": "上海"}]'.encode("gbk")
    proc = add(initialised, data, "gbk.json", records)
    assert proc.returncode == 0 and "2 rows, 2 columns, encoding gb18030" in proc.stdout, proc.stderr
    refused(add(initialised, data, "x.csv", b"a,b\n1,2\n", "--encoding", "rot13"), 60, "no text encoding 'rot13'")


@pytest.mark.skipif(os.name == "nt", reason="Windows file names are always Unicode")
def test_a_folder_with_a_gbk_file_name_is_registered_without_it(initialised, data):
    folder = data / "share"
    folder.mkdir()
    (folder / "ok.txt").write_text("x")
    gbk_name = os.path.join(os.fsencode(folder), "订单.csv".encode("gbk"))
    with open(gbk_name, "wb") as f:
        f.write(b"a,b\n1,2\n")
    proc = run(initialised, data, "resource", "add", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["version"]["skipped"]["reasons"] == {"name is not UTF-8": 1}
    refused(run(initialised, data, "resource", "add", os.fsdecode(gbk_name)), 66, "not UTF-8 text")


def test_a_backup_with_a_malformed_header_is_refused_clearly(initialised, data, tmp_path):
    genuine = tmp_path / "box.backup"
    initialised.run("backup", str(genuine))
    line, digest, rest = genuine.read_bytes().split(b"\n", 2)
    meta = json.loads(line)

    def forged(new: bytes) -> bytes:  # the digest only catches accidents: a crafted header has a matching one
        from appliance.storage.backup import _digest
        return new + b"\n" + _digest(new) + b"\n" + rest

    target = tmp_path / "new-box"
    for name, content, words in [
        ("cut.backup", line[:40], "not a dsnode backup"),
        ("magic.backup", b"PK\x03\x04" + rest, "not a dsnode backup"),
        ("deep.backup", forged(b'{"a":' * 2000 + b"1" + b"}" * 2000), "not UTF-8 JSON"),
        ("huge.backup", forged(line.replace(b'"schema_version":', b'"schema_version":1' + b"0" * 5000 + b",\"x\":")),
         "not UTF-8 JSON"),
        ("inf.backup", forged(json.dumps({**meta, "schema_version": float("inf")}).encode()), "not UTF-8 JSON"),
        ("gbk.backup", forged(json.dumps({**meta, "created": "备份"}, ensure_ascii=False).encode("gbk")), "UTF-8"),
        ("types.backup", forged(json.dumps({**meta, "chunk_size": "65536"}).encode()), "chunk size"),
        ("store.backup", forged(json.dumps({**meta, "store": [1]}).encode()), "not a JSON object"),
    ]:
        (tmp_path / name).write_bytes(content)
        proc = run(initialised, data, "restore", str(tmp_path / name), "--home", str(target))
        refused(proc, 27, name, words, "Nothing was restored")
        assert not target.exists()


def test_an_evidence_bundle_with_a_malformed_header_is_refused_clearly(initialised, data, tmp_path):
    import subprocess
    import sys

    from tests.e2e.conftest import ROOT

    genuine = tmp_path / "all.jsonl"
    initialised.run("evidence", "export", str(genuine))
    header, rest = genuine.read_bytes().split(b"\n", 1)
    meta = json.loads(header)
    for name, line, words in [
        ("deep.jsonl", b'{"a":' * 100_000, "line 1 is not JSON"),
        ("huge.jsonl", header.replace(b'"version": 1', b'"version": 1' + b"0" * 5000), "line 1 is not JSON"),
        ("types.jsonl", json.dumps({**meta, "keys": {"0": 1}}).encode(), "keys: an object"),
        ("missing.jsonl", json.dumps({k: v for k, v in meta.items() if k != "checkpoint"}).encode(), "checkpoint"),
        ("version.jsonl", json.dumps({**meta, "version": True}).encode(), "version true"),
        ("gbk.jsonl", json.dumps({**meta, "node": "节点"}, ensure_ascii=False).encode("gbk"), "cannot read it"),
    ]:
        (tmp_path / name).write_bytes(line + b"\n" + rest)
        proc = subprocess.run([sys.executable, "-m", "appliance.evidence_verify", str(tmp_path / name), "--lang", "en"],
                              capture_output=True, text=True, cwd=ROOT, env=initialised.env(), timeout=60)
        refused(proc, 53, "NOT VERIFIED", words)
        assert "Traceback" not in proc.stderr


def test_an_invitation_code_with_oversized_numbers_or_wrong_types_is_refused_clearly(initialised, data, tmp_path):
    import base64
    import zlib

    def packed(text: bytes) -> str:
        return "DSI1-" + base64.urlsafe_b64encode(zlib.compress(text)).rstrip(b"=").decode()

    (tmp_path / "deep.json").write_text('{"a":' * 20_000)
    for code, words in [
        (packed(b"[" * 100_000), "damaged or incomplete"),
        (packed(b'{"v": 1' + b"0" * 5000 + b', "operator": "did:key:z"}'), "damaged or incomplete"),
        (packed(b'{"v": 1, "operator": 12345678901234567890}'), "does not name the space operator"),
        (packed(b'{"v": NaN, "operator": "did:key:z"}'), "damaged or incomplete"),
        ("DSI1-" + "é" * 12, "damaged or incomplete"),
        (str(tmp_path / "deep.json"), "neither an invitation code nor invitation JSON"),
    ]:
        refused(run(initialised, data, "space", "join", code, "--yes"), 103, "invitation cannot be used", words)
