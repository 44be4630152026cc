"""`dsnode resource …` as a user runs it: real files, a real store, one clear line on bad input."""

import json

import pytest

CSV = "客户姓名,手机号,金额,日期\n张三,13812345678,12.5,2026-01-05\n李四,13912345678,7,2026-02-01\n"


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "orders.csv").write_bytes(CSV.encode("gbk"))
    return folder


def run(cli, data, *args, ok=True):
    return cli.run(*args, ok=ok, env=cli.env(DSNODE_ALLOWED_ROOTS=str(data)))


def test_scan_register_describe_label_mask_and_rescan(initialised, data):
    cli = initialised
    out = run(cli, data, "resource", "scan", str(data / "orders.csv"), "--json").stdout
    report = json.loads(out)  # a dry run: the sensitive report, nothing registered
    assert report["rows"] == 2 and {f["kind"] for f in report["sensitive"]} == {"person_name", "mobile"}
    assert "13812345678" not in out
    out = run(cli, data, "resource", "add", str(data / "orders.csv"), "--title", "客户订单", "--keywords", "订单,销售",
              "--json")
    created = json.loads(out.stdout)
    rid = created["resource"]["id"]
    assert created["version"]["encoding"] == "gb18030" and created["version"]["row_count"] == 2
    short = rid[20:28]
    listed = run(cli, data, "resource", "list").stdout
    assert short in listed and "客户订单" in listed and "table" in listed and "referenced" in listed
    zh = cli.run("resource", "list", env=cli.env(DSNODE_ALLOWED_ROOTS=str(data), DSNODE_LANG="zh_CN")).stdout
    assert "表格" in zh and "引用" in zh and "table" not in zh and "referenced" not in zh  # kinds in words
    run(cli, data, "resource", "label", short, "--category", "important", "--level", "3")
    run(cli, data, "resource", "edit", short, "--description", "每日导出")
    run(cli, data, "resource", "mask", short, "--column", "手机号", "--rule", "mask", "--keep-first", "3",
        "--keep-last", "4")
    preview = json.loads(run(cli, data, "resource", "mask-preview", short, "--json").stdout)
    assert preview["rows"][0]["before"][1] == "13812345678" and preview["rows"][0]["after"][1] == "138****5678"
    shown = run(cli, data, "resource", "show", short).stdout
    assert "important data" in shown and "138****5678" in shown and "13812345678" not in shown
    (data / "orders.csv").write_bytes((CSV + "王五,13712345678,1,2026-03-01\n").encode("gbk"))
    rescanned = json.loads(run(cli, data, "resource", "rescan", "--all", "--json").stdout)
    assert rescanned == [{"resource_id": rid, "status": "new_version", "version": 2, "reason": ""}]
    evidence = cli.run("evidence", "list", "--subject", rid, "--json").stdout
    actions = [e["action"] for e in json.loads(evidence)]
    assert actions == ["resource.versioned", "resource.masking_set", "resource.updated", "resource.labelled",
                       "resource.registered"]
    run(cli, data, "resource", "remove", short)
    assert "No data resources" in run(cli, data, "resource", "list").stdout


BAD_INPUT = [  # arguments, exit code, words of the one line on stderr
    (("resource", "add", "/etc/hostname"), 63, "outside the folders"),
    (("resource", "add", "{data}/missing.csv"), 64, "does not exist"),
    (("resource", "add", "{data}/broken.csv"), 65, "never closed"),
    (("resource", "show", "abcdef12"), 61, "no data resource"),
    (("resource", "add", "{data}/old.xls"), 66, ".xlsx"),
    (("resource", "mask", "{rid}", "--column", "nope", "--rule", "drop"), 67, "no column nope"),
    (("--lang", "zh_CN", "resource", "mask", "{rid}", "--column", "金额", "--rule", "generalise"), 67, "脱敏规则无效"),
    (("--lang", "zh_CN", "resource", "mask", "{rid}", "--column", "金额", "--rule", "generalise"), 67,
     "`to` 须为以下之一"),
    (("--lang", "zh_CN", "resource", "add", "/etc/hostname"), 63,
     "如需允许其他文件夹，请把环境变量 `DSNODE_ALLOWED_ROOTS` 设为"),
    (("--lang", "zh_CN", "resource", "add", "{data}/broken.csv"), 65, "从第 2 行开始的带引号的值缺少结束引号"),
]


def test_bad_input_gives_one_clear_line_and_its_own_exit_code(initialised, data):
    (data / "broken.csv").write_text('a,b\n1,"open\n', encoding="utf-8")
    (data / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    added = run(initialised, data, "resource", "add", str(data / "orders.csv"), "--json")
    rid = json.loads(added.stdout)["resource"]["id"]
    for args, code, words in BAD_INPUT:
        proc = run(initialised, data, *(a.format(data=data, rid=rid) for a in args), ok=False)
        assert proc.returncode == code, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr, (args, proc.stderr)
