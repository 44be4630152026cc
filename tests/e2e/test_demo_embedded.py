"""`dsnode demo` with mosquitto hidden: the data space part runs on the embedded broker; and
`dsnode operator run --embedded-broker` serves a space with no mosquitto at all."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import paho.mqtt.client as mqtt

from tests.e2e.conftest import ROOT, Cli


def test_demo_runs_the_space_on_the_embedded_broker_without_mosquitto(cli):
    proc = cli.run("demo", "--yes", env=cli.env(DSNODE_MOSQUITTO="off"))
    out = proc.stdout
    assert "the embedded MQTT 5 broker" in out and "mosquitto on" not in out
    assert "admitted automatically" in out and "admitted after review" in out
    assert "finds in the space catalog: Injection moulding temperature" in out
    assert "FINALIZED" in out and "its log verifies: yes" in out
    assert "(no answer in time)" not in out and "the broker was stopped" in out
    assert "Traceback" not in proc.stderr
    assert "\x1b" not in out + proc.stderr  # not a terminal: no escape codes in what is captured or logged


def test_the_demo_says_which_broker_in_chinese_too(cli):
    cli.lang = "zh_CN"
    proc = cli.run("demo", "--yes", env=cli.env(DSNODE_MOSQUITTO="off"))
    out = proc.stdout
    assert "内置 MQTT 5 消息代理" in out and "消息代理已停止" in out
    # states and verdicts in words, not DSP names or an English "OK" inside Chinese sentences
    assert "协议已生效" in out and "已申请 → 提供方已同意" in out and "日志校验：是" in out
    assert "FINALIZED" not in out and "REQUESTED" not in out
    assert "：OK" not in out  # (the invitation code may contain "OK" by chance)


def test_the_demo_names_both_ids_of_the_negotiation_a_person_approves(cli):
    out = cli.run("demo", "--yes", env=cli.env(DSNODE_MOSQUITTO="off")).stdout
    waiting = next(line for line in out.splitlines() if "waiting for a person" in line)
    asked = [line.split("negotiation ")[-1] for line in out.splitlines() if "asks for a contract" in line]
    consumer_id = asked[1]  # the second request is the one a person approves
    provider_id = waiting.split("Each side numbers this negotiation: ")[1].split(" at Workshop A")[0]
    assert f"{consumer_id} at Workshop B" in waiting and provider_id != consumer_id
    assert f"Workshop B's negotiation {consumer_id}: FINALIZED" in out


def test_a_node_joins_a_space_whose_operator_serves_the_embedded_broker(tmp_path, cli):
    key = tmp_path / "operator.key"
    key.write_text("operator passphrase 2026\n")
    key.chmod(0o600)
    operator_cli = Cli(tmp_path / "operator", key)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = operator_cli.env(DSNODE_MOSQUITTO="off")
    operator_cli.run("operator", "init", "--space", "small", "--name", "Small space", "--broker-host", "127.0.0.1",
                     "--broker-port", str(port), "--auto-admit", "--kdf", "minimum", env=env)
    operator_cli.run("operator", "invite", "--out", str(tmp_path / "invite.txt"), env=env)
    daemon = subprocess.Popen([sys.executable, "-m", "edge", "operator", "run", "--embedded-broker"], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = daemon.stdout.readline()
        assert f"127.0.0.1:{port}" in line, line
        assert not _anonymous_client_accepted(port)
        cli.run("init", "--name", "box-1", "--org", "Example", "--kdf", "minimum")
        proc = cli.run("space", "join", str(tmp_path / "invite.txt"), "--yes", "--wait", "30")
        assert "small" in proc.stdout and "Admitted" in proc.stdout, proc.stdout + proc.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0 and "Traceback" not in err, err
    members = operator_cli.run("operator", "members").stdout
    assert "box-1" in members and "member" in members


def _anonymous_client_accepted(port: int) -> bool:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="probe", protocol=mqtt.MQTTv5)
    answers = []
    client.on_connect = lambda c, u, f, reason, p: answers.append(reason)
    client.connect("127.0.0.1", port)
    deadline = time.monotonic() + 5
    while not answers and time.monotonic() < deadline:
        client.loop(0.1)
    client.disconnect()
    assert answers, "no CONNACK"
    return not answers[0].is_failure
