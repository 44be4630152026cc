"""`dsnode selftest`: one line per check in the user's language, exit 0 only if all pass."""

from appliance.net.broker import EmbeddedBroker
from edge.broker_process import free_port


def test_every_check_passes_and_the_nodes_store_is_not_touched(cli):
    proc = cli.run("selftest")
    lines = proc.stdout.splitlines()
    for check in ("message catalogs, schemas and templates", "encrypted store (SQLCipher)",
                  "signatures and encryption", "discovery on 127.0.0.1", "MQTT message through a broker"):
        assert any(line.startswith(check) and line.endswith(" ok") for line in lines), proc.stdout
    assert lines[-1].startswith("All ") and lines[-1].endswith(" checks passed.")
    assert not cli.home.exists()


def test_the_lines_are_in_the_users_language(cli):
    cli.lang = "zh_CN"
    proc = cli.run("selftest")
    assert "加密存储（SQLCipher）：正常" in proc.stdout
    assert "项检查通过。" in proc.stdout


def test_a_given_broker_is_used(cli):
    broker = EmbeddedBroker(None)
    port = broker.start("127.0.0.1", 0)
    try:
        proc = cli.run("selftest", "--broker", f"127.0.0.1:{port}")
    finally:
        broker.stop()
    assert "MQTT message through a broker" in proc.stdout and "failed" not in proc.stdout


def test_a_broker_that_does_not_answer_fails_the_selftest(cli):
    proc = cli.run("selftest", "--broker", f"127.0.0.1:{free_port()}", ok=False)
    assert proc.returncode == 1
    failed = [line for line in proc.stdout.splitlines() if "failed:" in line]
    assert len(failed) == 1 and failed[0].startswith("MQTT message through a broker"), proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("1 of ")
