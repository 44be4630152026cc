"""The `dsnode` command line as an edge-box admin uses it: real processes, real stores."""

import json
import os
import pty
import select
import subprocess
import sys

import pytest

from appliance.errors import (KeySourceError, StoreExists, StoreNotFound, EvidenceTampered, WrongPassphrase,
                              PassphraseMismatch, BundleInvalid)
from appliance.node import Node

from .conftest import ROOT


def test_version(cli):
    assert cli.run("--version").stdout.startswith("dsnode 0.")


def test_init_then_status(initialised):
    out = initialised.run("status", "--json").stdout
    status = json.loads(out)
    assert status["did"].startswith("did:key:z6Mk") and status["name"] == "box-1"
    assert status["evidence_entries"] == 1
    text = initialised.run("status").stdout
    assert status["did"] in text and "Evidence entries" in text


@pytest.mark.parametrize("lang, words", [("en", "No node store"), ("zh_CN", "找不到节点存储")])
def test_a_missing_store_is_one_clear_line_in_the_users_language(cli, lang, words):
    proc = cli.run("status", ok=False, env=cli.env(DSNODE_LANG=lang))
    assert proc.returncode == StoreNotFound.exit_code
    assert words in proc.stderr and "dsnode init" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_lang_flag_overrides_the_locale(cli):
    proc = cli.run("--lang", "en", "status", ok=False, env=cli.env(DSNODE_LANG="zh_CN"))
    assert "No node store" in proc.stderr


def test_init_twice_is_refused(initialised):
    proc = initialised.run("init", "--kdf", "minimum", ok=False)
    assert proc.returncode == StoreExists.exit_code


def test_wrong_key_file_is_refused_without_noise(initialised, tmp_path):
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not the passphrase at all")
    wrong.chmod(0o600)
    proc = initialised.run("status", ok=False, env=initialised.env(DSNODE_KEY_FILE=str(wrong)))
    assert proc.returncode == WrongPassphrase.exit_code
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_a_key_file_others_can_read_is_refused(initialised, key_file):
    key_file.chmod(0o644)
    proc = initialised.run("status", ok=False)
    assert proc.returncode == KeySourceError.exit_code and "600" in proc.stderr


def test_the_key_can_come_from_an_environment_variable(initialised, key_file):
    env = initialised.env(DSNODE_KEY_ENV="MY_SECRET", MY_SECRET=key_file.read_text().strip())
    del env["DSNODE_KEY_FILE"]
    assert initialised.run("status", env=env).returncode == 0


def test_the_key_can_come_from_a_systemd_credential(initialised, key_file, tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "dsnode-key").write_text(key_file.read_text())
    (creds / "dsnode-key").chmod(0o400)
    env = initialised.env(DSNODE_KEY_CREDENTIAL="dsnode-key", CREDENTIALS_DIRECTORY=str(creds))
    del env["DSNODE_KEY_FILE"]
    assert initialised.run("status", env=env).returncode == 0


def test_evidence_list_verify_export_and_offline_verifier(initialised, tmp_path):
    initialised.run("identity", "rotate")
    listing = initialised.run("evidence", "list").stdout
    assert "node.created" in listing and "identity.key_rotated" in listing
    assert "verified" in initialised.run("evidence", "verify").stdout
    bundle = tmp_path / "evidence.jsonl"
    initialised.run("evidence", "export", str(bundle))
    ok = subprocess.run([sys.executable, "-m", "appliance.evidence_verify", "--lang", "en", str(bundle)],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and "Verified: 2 entries" in ok.stdout
    bundle.write_text(bundle.read_text().replace("identity.key_rotated", "identity.key_revoked"))
    bad = subprocess.run([sys.executable, "-m", "appliance.evidence_verify", str(bundle)],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == BundleInvalid.exit_code and "校验未通过" in bad.stderr


def test_verify_against_a_saved_checkpoint_catches_a_rewrite(initialised, tmp_path, key_file):
    saved = tmp_path / "published.note"
    initialised.run("evidence", "checkpoint", "--out", str(saved))
    assert "verified" in initialised.run("evidence", "verify", "--checkpoint", str(saved)).stdout
    with Node.open(initialised.home, key_file.read_text().strip().encode()) as node:
        def forge(conn):
            for table in ("evidence_entry", "evidence_checkpoint"):
                conn.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_delete")
                conn.execute(f"DELETE FROM {table}")
            from appliance.services.evidence import append_entry
            append_entry(conn, ts="2026-01-01T00:00:00.000Z", actor="x", action="node.created", subject="x",
                         payload=None)
        node.store.db.write(forge)
    proc = initialised.run("evidence", "verify", "--checkpoint", str(saved), ok=False)
    assert proc.returncode == EvidenceTampered.exit_code
    assert "rewritten" in proc.stdout + proc.stderr or "deleted" in proc.stdout + proc.stderr


def test_passphrase_change_with_a_new_key_file(initialised, tmp_path):
    new = tmp_path / "new.key"
    new.write_text("the second passphrase")
    new.chmod(0o600)
    initialised.run("passphrase", "change", "--new-key-file", str(new))
    assert initialised.run("status", ok=False).returncode == WrongPassphrase.exit_code
    assert initialised.run("status", env=initialised.env(DSNODE_KEY_FILE=str(new))).returncode == 0


def test_backup_and_restore_to_a_new_machine(initialised, tmp_path):
    backup = tmp_path / "box.backup"
    initialised.run("backup", str(backup))
    did = json.loads(initialised.run("status", "--json").stdout)["did"]
    other = tmp_path / "other-home"
    env = initialised.env(DSNODE_HOME=str(other))
    initialised.run("restore", str(backup), env=env)
    restored = json.loads(initialised.run("status", "--json", env=env).stdout)
    assert restored["did"] == did
    assert initialised.run("restore", str(backup), env=env, ok=False).returncode == StoreExists.exit_code
    junk = tmp_path / "junk.backup"
    junk.write_bytes(os.urandom(4096))
    proc = initialised.run("restore", str(junk), env=initialised.env(DSNODE_HOME=str(tmp_path / "h3")), ok=False)
    assert "Traceback" not in proc.stderr and proc.returncode != 0


def _interactive(cli, args, answers):
    """Run dsnode on a pseudo-terminal and answer its prompts in turn."""
    env = cli.env()
    del env["DSNODE_KEY_FILE"]
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "edge", *args], env)
    output, since_answer, pending = b"", b"", list(answers)
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            os.kill(pid, 9)
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        since_answer += chunk
        if pending and since_answer.rstrip().endswith((b":", "：".encode())):
            os.write(fd, pending.pop(0).encode() + b"\n")
            since_answer = b""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_init_asks_for_the_passphrase_twice(cli):
    code, out = _interactive(cli, ["init", "--kdf", "minimum"], ["typed passphrase", "typed passphrase"])
    assert code == 0, out
    assert "Created node did:key:" in out
    code, out = _interactive(cli, ["status"], ["typed passphrase"])
    assert code == 0 and "did:key:" in out


def test_init_with_two_different_passphrases_creates_nothing(cli):
    code, out = _interactive(cli, ["init", "--kdf", "minimum"], ["typed passphrase", "another one!"])
    assert code == PassphraseMismatch.exit_code
    assert not Node.exists(cli.home)


def test_no_terminal_and_no_key_source_is_a_clear_error(cli):
    env = cli.env()
    del env["DSNODE_KEY_FILE"]
    proc = cli.run("init", ok=False, env=env, input="")
    assert "--key-file" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_runs_and_cleans_up(cli):
    proc = cli.run("demo")
    assert "Detected" in proc.stdout and "verifies" in proc.stdout
    assert "cleaned" not in proc.stderr


def test_a_flipped_byte_on_disk_is_reported_not_ignored(initialised, key_file):
    """Damage inside the encrypted file: SQLCipher's page MAC catches it; the user gets one line."""
    for _ in range(30):
        initialised.run("identity", "rotate")
    db = initialised.home / "node.sqlite"
    initialised.run("status")  # checkpoints the WAL into the main file on close
    data = bytearray(db.read_bytes())
    assert len(data) > 3 * 4096
    data[2 * 4096 + 100] ^= 0x01  # a byte in the middle of page 3
    db.write_bytes(bytes(data))
    proc = initialised.run("evidence", "verify", ok=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "damaged" in proc.stderr or "does not verify" in proc.stderr + proc.stdout
