"""`dsnode backup` / `dsnode restore` with hosted resources, through the real CLI."""

from __future__ import annotations

import json
import shutil

from appliance.errors import BackupInvalid


def test_a_backup_carries_hosted_files_to_another_machine(initialised, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.csv").write_text("id,amount,note\n1,10,首单\n2,20,加急\n", encoding="utf-8")
    env = initialised.env(DSNODE_ALLOWED_ROOTS=str(data))
    initialised.run("resource", "add", str(data / "orders.csv"), "--hosted", env=env)
    rid = json.loads(initialised.run("resource", "list", "--json", env=env).stdout)[0]["id"]

    backup = tmp_path / "box.backup"
    done = initialised.run("backup", str(backup), env=env)
    assert done.stderr == ""  # no warning any more: the vault is in the backup
    assert str(backup) in done.stdout and "1 hosted file(s)" in done.stdout and "KB in all" in done.stdout
    zh = initialised.run("backup", str(tmp_path / "zh.backup"), env={**env, "DSNODE_LANG": "zh_CN"})
    assert "1 个托管文件" in zh.stdout

    shutil.rmtree(initialised.home)  # the old box and the original file are gone
    shutil.rmtree(data)
    other = initialised.env(DSNODE_HOME=str(tmp_path / "new-box"))
    initialised.run("restore", str(backup), env=other)
    preview = json.loads(initialised.run("resource", "mask-preview", rid, "--json", env=other).stdout)
    assert [row["before"] for row in preview["rows"]] == [["1", "10", "首单"], ["2", "20", "加急"]]


def test_a_truncated_backup_is_one_clear_line_and_creates_nothing(initialised, tmp_path):
    backup = tmp_path / "box.backup"
    initialised.run("backup", str(backup))
    cut = tmp_path / "cut.backup"
    cut.write_bytes(backup.read_bytes()[:-100])
    target = tmp_path / "new-box"
    proc = initialised.run("restore", str(cut), env=initialised.env(DSNODE_HOME=str(target)), ok=False)
    assert proc.returncode == BackupInvalid.exit_code
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "Nothing was restored" in proc.stderr
    assert not target.exists()


def test_a_damaged_store_is_named_damage_by_status_verify_and_backup_and_is_not_backed_up(initialised, tmp_path):
    import os

    from appliance.errors import StoreCorrupt

    db = initialised.home / "node.sqlite"
    with open(db, "r+b") as f:
        f.seek((db.stat().st_size // 4096 // 2) * 4096 + 500)
        f.write(os.urandom(64))
    for args in (("status",), ("evidence", "verify"), ("backup", str(tmp_path / "copy.backup"))):
        proc = initialised.run(*args, ok=False)
        assert proc.returncode == StoreCorrupt.exit_code, (args, proc.stderr)
        assert "damaged" in proc.stderr and "dsnode restore" in proc.stderr and "Traceback" not in proc.stderr
    assert "Store file" in initialised.run("status", ok=False).stdout  # the rest is still shown
    assert not (tmp_path / "copy.backup").exists()
    zh = initialised.run("status", ok=False, env=initialised.env(DSNODE_LANG="zh_CN"))
    assert "已损坏" in zh.stderr
