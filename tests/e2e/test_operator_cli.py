"""The operator and joining commands through the real `dsnode` CLI, with a real broker."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.brokers import Mosquitto, free_port
from tests.e2e.conftest import ROOT, Cli


@pytest.fixture
def operator_cli(tmp_path) -> Cli:
    key = tmp_path / "operator.key"
    key.write_text("operator passphrase 2026\n")
    key.chmod(0o600)
    return Cli(tmp_path / "operator", key)


def test_operator_init_refuses_a_bad_space_id_and_an_existing_space(operator_cli):
    proc = operator_cli.run("operator", "init", "--space", "Bad Space", "--name", "x", "--kdf", "minimum", ok=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    operator_cli.run("operator", "init", "--space", "good-space", "--name", "x", "--kdf", "minimum")
    proc = operator_cli.run("operator", "init", "--space", "other-space", "--name", "y", ok=False)
    assert proc.returncode == 102


def test_operator_commands_on_a_plain_node_say_what_to_do(initialised):
    proc = initialised.run("operator", "members", ok=False)
    assert proc.returncode == 101 and "operator init" in proc.stderr


def test_a_bad_invitation_is_refused_with_its_own_exit_code(initialised):
    proc = initialised.run("space", "join", "DSI1-garbage", "--yes", ok=False)
    assert proc.returncode == 103


@pytest.mark.slow
def test_a_node_joins_a_space_run_by_the_operator_daemon(operator_cli, cli, tmp_path):
    port = free_port()
    operator_cli.run("operator", "init", "--space", "e2e-space", "--name", "E2E 数据空间", "--broker-host",
                     "127.0.0.1", "--broker-port", str(port), "--auto-admit", "--default-grade", "2",
                     "--kdf", "minimum")
    out = tmp_path / "broker"
    operator_cli.run("operator", "broker-config", "--out", str(out), "--port", str(port))
    broker = Mosquitto(out, config_text=(out / "mosquitto.conf").read_text(), port=port)
    daemon = None
    try:
        proc = operator_cli.run("operator", "invite", "--org", "示例制造", "--out", str(tmp_path / "invite.txt"),
                                "--qr", str(tmp_path / "invite.png"))
        code = proc.stdout.strip().splitlines()[-1]
        assert code.startswith("DSI1-") and (tmp_path / "invite.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / "invite.txt").stat().st_mode & 0o077 == 0, "a one-time code is readable by its owner only"
        daemon = subprocess.Popen([sys.executable, "-m", "edge", "operator", "run"], cwd=ROOT, env=operator_cli.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cli.run("init", "--name", "box-1", "--org", "示例制造", "--kdf", "minimum")
        proc = cli.run("space", "join", str(tmp_path / "invite.txt"), "--yes", "--wait", "30")
        assert "e2e-space" in proc.stdout and "Admitted" in proc.stdout, proc.stdout + proc.stderr
        assert "member grade 2" in proc.stdout, "the joining node sees the grade its credential gives it"
        again = cli.run("space", "join", code, "--yes", ok=False)
        assert again.returncode == 111  # already a member
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            stdout, stderr = daemon.communicate(timeout=30)
            assert daemon.returncode == 0, stderr
        broker.stop()
    members = operator_cli.run("operator", "members").stdout
    assert "box-1" in members and "member" in members and "grade 2" in members  # the space's default grade
    (member,) = json.loads(operator_cli.run("operator", "members", "--json").stdout)
    assert member["status"] == "member"  # --json keeps the stored value, zh output says it in words
    zh = operator_cli.run("operator", "members", env=operator_cli.env(DSNODE_LANG="zh_CN")).stdout
    assert "成员" in zh and "member" not in zh
    admissions = operator_cli.run("operator", "admissions", "--all", env=operator_cli.env(DSNODE_LANG="zh_CN"))
    assert "已准入" in admissions.stdout and "admitted" not in admissions.stdout
    assert "grade 4" in operator_cli.run("operator", "grade", member["did"], "4").stdout
    assert json.loads(operator_cli.run("operator", "members", "--json").stdout)[0]["grade"] == 4
    assert operator_cli.run("operator", "grade", member["did"], "9", ok=False).returncode == 2
