"""Registering data resources on a real node: every format, both modes, versions, failures, evidence."""

import json
import os
import sqlite3
import uuid

import pytest

from appliance.domain.catalog import Kind, Mode, ResourceRegistered, ResourceVersioned
from appliance.errors import (
    AmbiguousResourceId, EvidenceWriteFailed, InvalidLabel, InvalidMaskingRule, MalformedTable, PathNotAllowed,
    ResourceError, ResourceNotFound, SourceUnreadable, UnsupportedSource, VaultError,
)
from appliance.services.catalog.resources import ResourceService

SECRET = "ZQX7731KESTREL"  # a value that must never appear in plaintext in the store
CSV = ("客户姓名,手机号,身份证号,金额,下单日期,备注\n"
       f"张三,13812345678,11010519491231002X,1200.50,2026-01-05,{SECRET}\n"
       "李四,13912345678,440524188001010014,88.00,2026-02-11,加急\n"
       "王五,13712345678,11010519491231002X,15.00,2026-03-20,\n")


def state(node) -> tuple:
    """What must not change when an operation fails."""
    counts = node.store.db.read(lambda c: (c.execute("SELECT count(*) FROM resource").fetchone()[0],
                                           c.execute("SELECT count(*) FROM resource_version").fetchone()[0],
                                           c.execute("SELECT count(*) FROM vault_object").fetchone()[0]))
    return counts, node.evidence.size(), sorted(p.name for p in node.store.vault_dir.iterdir())


def test_registering_a_gbk_csv(node, data):
    path = data / "订单.csv"
    path.write_bytes(CSV.encode("gbk"))
    events = []
    node.bus.subscribe(events.append)
    reg = node.resources.register(path, keywords="订单, 销售")
    r, v = reg.resource, reg.version
    assert reg.created and r.kind == Kind.TABLE and r.mode == Mode.REFERENCED and r.title == "订单.csv"
    assert r.keywords == ("订单", "销售") and r.suggested_sensitivity == 4 and r.sensitivity is None
    assert (v.version, v.encoding, v.row_count, v.format) == (1, "gb18030", 3, "csv")
    assert {c.name: c.sensitive for c in v.columns} == {"客户姓名": "person_name", "手机号": "mobile",
                                                        "身份证号": "cn_id", "金额": None, "下单日期": None,
                                                        "备注": None}
    assert v.time_range == {"column": "下单日期", "min": "2026-01-05", "max": "2026-03-20"}
    assert v.samples[0][:3] == ("张*", "138****5678", "110*************2X")  # samples are masked
    assert events == [ResourceRegistered(r.id, 1)]
    entry = next(node.evidence.entries(subject=r.id))
    assert entry.action == "resource.registered" and entry.payload["sha256"] == v.sha256
    assert sorted(entry.payload["sensitive"]) == ["cn_id", "mobile", "person_name"]
    assert "13812345678" not in json.dumps(entry.payload, ensure_ascii=False)


def test_every_format(node, data):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active.append(["编号", "邮箱"])
    wb.active.append([1, "a@example.com"])
    wb.save(data / "w.xlsx")
    (data / "t.tsv").write_text("a\tb\n1\t2\n", encoding="utf-8")
    (data / "r.jsonl").write_text('{"ip": "10.0.0.1"}\n{"ip": "10.0.0.2"}\n', encoding="utf-8")
    (data / "r.json").write_text('[{"x": 1}, {"x": 2}, {"x": 3}]', encoding="utf-8")
    (data / "manual.pdf").write_bytes(b"%PDF-1.4 not really")
    conn = sqlite3.connect(data / "erp.sqlite")
    conn.execute("CREATE TABLE orders (id INTEGER, plate TEXT)")
    conn.execute("INSERT INTO orders VALUES (1, '沪A12345'), (2, '粤BD12345')")
    conn.commit()
    conn.close()
    got = {name: node.resources.register(data / name).version for name in
           ("w.xlsx", "t.tsv", "r.jsonl", "r.json", "manual.pdf", "erp.sqlite")}
    assert {n: v.row_count for n, v in got.items()} == {"w.xlsx": 2 - 1, "t.tsv": 1, "r.jsonl": 2, "r.json": 3,
                                                        "manual.pdf": None, "erp.sqlite": 2}
    assert got["w.xlsx"].columns[1].sensitive == "email" and got["r.jsonl"].columns[0].sensitive == "ip_address"
    assert got["erp.sqlite"].columns[1].sensitive == "license_plate"
    kinds = {r.title: r.kind for r in node.resources.list()}
    assert kinds["erp.sqlite / orders"] == Kind.SQLITE_TABLE and kinds["manual.pdf"] == Kind.FILE
    api = node.resources.register("https://erp.example.com/api/v1/orders", title="订单接口").resource
    assert api.kind == Kind.API and node.resources.version(api.id).size == 0


def test_a_sqlite_database_with_several_tables_needs_a_table(node, data):
    conn = sqlite3.connect(data / "two.db")
    conn.execute("CREATE TABLE a (x)")
    conn.execute("CREATE TABLE b (y)")
    conn.commit()
    conn.close()
    with pytest.raises(MalformedTable, match="a, b"):
        node.resources.register(data / "two.db")
    assert node.resources.register(data / "two.db", table="b").resource.source.endswith("two.db#b")


def test_folders_with_patterns_a_symlink_loop_and_a_link_outside(node, data, tmp_path):
    folder = data / "exports"
    (folder / "2026" / "tmp").mkdir(parents=True)
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "2026" / "b.csv").write_text("x\n2\n")
    (folder / "2026" / "tmp" / "c.csv").write_text("x\n3\n")
    (folder / "notes.txt").write_text("hello")
    (folder / "2026" / "loop").symlink_to(folder)
    (tmp_path / "outside.csv").write_text("secret\n")
    (folder / "outside.csv").symlink_to(tmp_path / "outside.csv")
    (folder / "dangling.csv").symlink_to(folder / "missing.csv")
    reg = node.resources.register(folder, include=["*.csv"], exclude=["2026/tmp"])
    v = reg.version
    assert reg.resource.kind == Kind.FOLDER
    assert [f["path"] for f in v.files] == ["2026/b.csv", "a.csv"]
    reasons = dict(map(tuple, v.skipped["first"]))
    assert reasons == {"2026/loop": "symlink loop", "outside.csv": "outside the allowed folders",
                       "dangling.csv": "broken symlink"}
    assert v.size == 8 and v.skipped["excluded"] >= 2


def test_paths_outside_the_allowed_folders_and_missing_paths_change_nothing(node, data, tmp_path):
    (tmp_path / "elsewhere.csv").write_text(CSV)
    (data / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    before = state(node)
    with pytest.raises(PathNotAllowed) as refused:
        node.resources.register(tmp_path / "elsewhere.csv")
    # both languages say how to allow the folder, with the folder to add at the end of the example
    example = f"DSNODE_ALLOWED_ROOTS={os.pathsep.join(str(r) for r in node.resources.allowed_roots)}{os.pathsep}"
    assert "to allow another folder" in refused.value.message("en")
    assert "如需允许其他文件夹" in refused.value.message("zh_CN")
    for lang in ("en", "zh_CN"):
        assert example + str(tmp_path.resolve()) in refused.value.message(lang)
    with pytest.raises(PathNotAllowed):
        node.resources.register(data / "link.csv")  # checked after resolving the link
    with pytest.raises(SourceUnreadable, match="does not exist") as missing:
        node.resources.register(data / "nope.csv")
    assert missing.value.message("zh_CN").endswith(
        "无法读取 " + str(data / "nope.csv") + "：它不存在。请确认它存在且 dsnode 有权读取；未登记任何内容。")
    (data / "self").symlink_to(data / "self")
    with pytest.raises(SourceUnreadable, match="loop"):
        node.resources.register(data / "self")
    with pytest.raises(UnsupportedSource):
        node.resources.register(data / "old.xls") if (data / "old.xls").write_bytes(b"x") else None
    assert state(node) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_a_clear_error(node, data):
    path = data / "locked.csv"
    path.write_text(CSV)
    path.chmod(0)
    with pytest.raises(SourceUnreadable):
        node.resources.register(path)


def test_malformed_input_leaves_the_store_unchanged(node, data):
    (data / "open.csv").write_text('a,b\n1,"never closed\n2,3\n', encoding="utf-8")
    before = state(node)
    with pytest.raises(MalformedTable, match="never closed"):
        node.resources.register(data / "open.csv")
    assert state(node) == before


def test_a_failure_midway_through_hosting_leaves_nothing_behind(node, data):
    (data / "big.csv").write_text("a,b\n" + "1,2\n" * 300_000)
    before = state(node)

    calls = []

    def fail(done, total):
        calls.append(done)
        if len(calls) > 1 and calls[-1] < calls[-2]:  # the copy into the vault has begun
            raise KeyboardInterrupt  # what Ctrl-C does halfway through the copy

    with pytest.raises(KeyboardInterrupt):
        node.resources.register(data / "big.csv", mode="hosted", progress=fail)
    assert calls[-1] < (data / "big.csv").stat().st_size  # it stopped inside the copy
    assert state(node) == before


def test_a_failed_evidence_write_discards_the_hosted_copy(node, data, monkeypatch):
    (data / "t.csv").write_text(CSV)
    before = state(node)

    def broken(*a, **kw):
        raise EvidenceWriteFailed("disk full")

    monkeypatch.setattr(node.evidence, "append", broken)
    with pytest.raises(EvidenceWriteFailed):
        node.resources.register(data / "t.csv", mode="hosted")
    assert state(node) == before


def test_hosted_copies_are_encrypted_and_readable_after_the_original_is_gone(node, data):
    path = data / "t.csv"
    path.write_text(CSV, encoding="utf-8")
    r = node.resources.register(path, mode="hosted").resource
    referenced = node.resources.register(data, mode="referenced").resource
    assert referenced.kind == Kind.FOLDER
    path.unlink()
    with node.resources.open_rows(r.id) as rows:
        assert [row[-1] for row in rows] == [SECRET, "加急", ""]
    node.store.db.checkpoint()
    for file in node.home.rglob("*"):
        if file.is_file():
            blob = file.read_bytes()
            assert SECRET.encode() not in blob and "加急".encode() not in blob, file
    assert node.resources.rescan(r.id).status == "missing"


def test_rescan_makes_a_new_version_when_the_content_changed(node, data):
    path = data / "t.csv"
    path.write_text(CSV, encoding="utf-8")
    r = node.resources.register(path).resource
    events = []
    node.bus.subscribe(events.append)
    assert node.resources.rescan(r.id).status == "unchanged"
    path.write_text(CSV + "赵六,13612345678,,1.00,2026-04-01,\n", encoding="utf-8")
    outcome = node.resources.rescan(r.id[20:28])  # a prefix of the uuid is enough
    assert (outcome.status, outcome.version) == ("new_version", 2)
    assert [v.row_count for v in node.resources.versions(r.id)] == [3, 4]
    assert node.resources.get(r.id).current_version == 2 and events == [ResourceVersioned(r.id, 2)]
    assert [e.action for e in node.evidence.entries(subject=r.id)] == ["resource.registered", "resource.versioned"]
    again = node.resources.register(path)  # re-registering an unchanged source adds nothing
    assert not again.created and not again.changed and again.version.version == 2
    path.unlink()
    assert node.resources.rescan(r.id).status == "missing"
    assert [o.status for o in node.resources.rescan_all()] == ["missing"]


def test_a_changed_referenced_file_is_not_read_as_the_old_version(node, data):
    path = data / "t.csv"
    path.write_text(CSV, encoding="utf-8")
    r = node.resources.register(path).resource
    path.write_text(CSV + "x,1,2,3,4,5\n", encoding="utf-8")
    with pytest.raises(ResourceError, match="rescan"):
        node.resources.open_rows(r.id)


def test_labels_metadata_and_masking_rules_leave_evidence(node, data):
    (data / "t.csv").write_text(CSV, encoding="utf-8")
    r = node.resources.register(data / "t.csv").resource
    r = node.resources.label(r.id, category="important", sensitivity=4)
    assert (r.category, r.sensitivity) == ("important", 4)
    r = node.resources.update(r.id, title="客户订单", description="每日导出", keywords=["订单"], owner="销售部")
    assert (r.title, r.keywords, r.owner) == ("客户订单", ("订单",), "销售部")
    r = node.resources.set_column_rule(r.id, {"column": "手机号", "rule": "mask", "keep_first": 3, "keep_last": 4})
    r = node.resources.set_column_rule(r.id, {"column": "身份证号", "rule": "pseudonymise"})
    r = node.resources.set_column_rule(r.id, {"column": "备注", "rule": "drop"})
    assert [x["column"] for x in r.masking] == ["手机号", "身份证号", "备注"]
    actions = [e.action for e in node.evidence.entries(subject=r.id)]
    assert actions == ["resource.registered", "resource.labelled", "resource.updated"] + ["resource.masking_set"] * 3
    for bad in ({"category": "secret"}, {"sensitivity": 5}, {}):
        with pytest.raises(InvalidLabel):
            node.resources.label(r.id, **bad)
    with pytest.raises(InvalidMaskingRule, match="no column"):
        node.resources.set_column_rule(r.id, {"column": "nope", "rule": "drop"})
    with pytest.raises(ResourceError):
        node.resources.update(r.id, title="")


def test_masked_rows_for_an_agreement(node, data):
    (data / "t.csv").write_text(CSV, encoding="utf-8")
    r = node.resources.register(data / "t.csv").resource
    node.resources.set_masking(r.id, [{"column": "手机号", "rule": "mask", "keep_first": 3, "keep_last": 4},
                                      {"column": "身份证号", "rule": "pseudonymise"},
                                      {"column": "备注", "rule": "drop"}])
    with node.resources.open_masked_rows(r.id, agreement_id="agreement-1") as a:
        cols, rows_a = a.columns, list(a)
    with node.resources.open_masked_rows(r.id, agreement_id="agreement-2") as b:
        rows_b = list(b)
    assert "备注" not in cols and rows_a[0][1] == "138****5678"
    assert rows_a[0][2] == rows_a[2][2] != rows_b[0][2]  # same ID number → same token in one agreement only
    preview = node.resources.mask_preview(r.id, n=2)
    assert preview.rows[0][0][1] == "13812345678" and preview.rows[0][1][1] == "138****5678"
    columns, samples = node.resources.samples(r.id)
    assert "备注" not in columns and all(SECRET not in row for row in samples)


def test_masking_rules_are_for_tables(node, data):
    (data / "f.bin").write_bytes(b"\x00\x01")
    r = node.resources.register(data / "f.bin").resource
    with pytest.raises(InvalidMaskingRule, match="tables"):
        node.resources.set_masking(r.id, [{"column": "x", "rule": "drop"}])


def test_ids_resolve_by_unique_prefix(node, data, clock):
    ids = iter([uuid.UUID("abcd0000-0000-4000-8000-000000000001"), uuid.UUID("abcd1111-0000-4000-8000-000000000002")])
    service = ResourceService(node.store.db, node.evidence, clock, node.bus, node.vault, node.store.subkey,
                              allowed_roots=[data], new_uuid=lambda: next(ids))
    (data / "a.txt").write_text("a")
    (data / "b.txt").write_text("b")
    service.register(data / "a.txt")
    service.register(data / "b.txt")
    assert service.get("abcd1").title == "b.txt"
    with pytest.raises(AmbiguousResourceId):
        service.get("abcd")
    with pytest.raises(ResourceNotFound):
        service.get("ffff0000")


def test_removed_resources_leave_the_list_but_keep_their_history(node, data):
    (data / "a.txt").write_text("a")
    r = node.resources.register(data / "a.txt").resource
    node.resources.remove(r.id)
    assert node.resources.list() == [] and node.resources.get(r.id).removed
    assert [x.id for x in node.resources.list(include_removed=True)] == [r.id]
    with pytest.raises(ResourceNotFound):
        node.resources.label(r.id, sensitivity=1)
    assert node.resources.register(data / "a.txt").created  # a removed source can be registered anew


def test_another_mode_for_a_registered_source_is_refused(node, data):
    (data / "a.txt").write_text("a")
    node.resources.register(data / "a.txt")
    with pytest.raises(UnsupportedSource, match="already registered"):
        node.resources.register(data / "a.txt", mode="hosted")


def test_the_vault_removes_orphans_and_refuses_tampered_objects(node, data):
    obj = node.vault.put([b"orphan"])  # written but never recorded: a crash before the commit
    assert node.vault.exists(obj.id)
    assert node.vault.clean_orphans() == 1 and not node.vault.exists(obj.id)
    (data / "t.csv").write_text(CSV, encoding="utf-8")
    v = node.resources.register(data / "t.csv", mode="hosted").version
    path = node.store.vault_dir / f"{v.vault_object}.obj"
    blob = bytearray(path.read_bytes())
    blob[40] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(VaultError, match="changed"):
        with node.resources.open_rows(v.resource_id) as rows:
            list(rows)


def test_hosted_sqlite_tables_workbooks_and_folders_read_back_from_the_vault(node, data):
    openpyxl = pytest.importorskip("openpyxl")
    conn = sqlite3.connect(data / "erp.db")
    conn.execute("CREATE TABLE t (id INTEGER, note TEXT, raw BLOB)")
    conn.execute("INSERT INTO t VALUES (1, ?, x'00ff')", (SECRET,))
    conn.commit()
    conn.close()
    wb = openpyxl.Workbook()
    wb.active.append(["a", "b"])
    wb.active.append([1, SECRET])
    wb.save(data / "w.xlsx")
    (data / "docs").mkdir()
    (data / "docs" / "readme.txt").write_text(SECRET)
    table = node.resources.register(data / "erp.db", mode="hosted").resource
    book = node.resources.register(data / "w.xlsx", mode="hosted").resource
    docs = node.resources.register(data / "docs", mode="hosted").resource
    for name in ("erp.db", "w.xlsx", "docs/readme.txt"):
        (data / name).unlink()
    with node.resources.open_rows(table.id) as rows:
        assert list(rows) == [[1, SECRET, "00ff"]]
    with node.resources.open_rows(book.id) as rows:
        assert rows.columns == ["a", "b"] and list(rows) == [[1, SECRET]]
    with node.resources.open_bytes(docs.id, file="readme.txt") as f:
        assert f.read() == SECRET.encode()
    with pytest.raises(ResourceError):
        node.resources.open_bytes(docs.id, file="nope.txt")


def test_wrong_kinds_and_modes_are_user_errors(node, data):
    (data / "a.txt").write_text("a")
    with pytest.raises(ResourceError, match="mode must be"):
        node.resources.register(data / "a.txt", mode="copied")
    with pytest.raises(ResourceError, match="kind must be"):
        node.resources.register(data / "a.txt", kind="spreadsheet")
    with pytest.raises(UnsupportedSource, match="metadata only"):
        node.resources.register("https://example.com/api", mode="hosted")
