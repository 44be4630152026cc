"""`dsnode operator broker-config --install`: the operator host's own mosquitto (Debian's layout, in
a temporary folder: a main mosquitto.conf that sets persistence and reads ``conf.d/``) gets a
readable snippet and an owner-only account folder; the real mosquitto starts with it (as root it
drops to the ``mosquitto`` user first, so that user must own the folder) and a node joins the space
through it, which also has the broker rewrite its dynamic-security file."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from edge.broker_process import BrokerProcess
from tests.brokers import DYNSEC_PLUGIN, MOSQUITTO, free_port
from tests.e2e.conftest import ROOT, Cli

pytestmark = pytest.mark.skipif(not (os.path.exists(MOSQUITTO) and os.path.exists(DYNSEC_PLUGIN)),
                                reason="mosquitto 2 with its dynamic security plugin is not installed")


def broker_user() -> pwd.struct_passwd | None:
    """Whom mosquitto runs as after it started: the "mosquitto" user when started as root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("as root without a mosquitto user, mosquitto would not drop root")


@pytest.fixture
def etc():
    """A folder laid out as Debian's /etc/mosquitto, reachable by the broker's user (not under the
    owner-only pytest folder)."""
    top = Path(tempfile.mkdtemp(prefix="dsnode-etc-mosquitto-"))
    top.chmod(0o755)
    (top / "conf.d").mkdir(mode=0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def debian_main_conf(etc: Path, user: pwd.struct_passwd | None) -> Path:
    """What Debian's /etc/mosquitto/mosquitto.conf says (persistence, include_dir), in ``etc``."""
    lib = etc / "lib"
    lib.mkdir(mode=0o700)
    lines = ["persistence true", f"persistence_location {lib}/", "log_dest stderr", f"include_dir {etc / 'conf.d'}"]
    if user is not None:
        os.chown(lib, user.pw_uid, user.pw_gid)
        lines.append("user mosquitto")
    path = etc / "mosquitto.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def operator_cli(tmp_path) -> Cli:
    key = tmp_path / "operator.key"
    key.write_text("operator passphrase 2026\n")
    key.chmod(0o600)
    return Cli(tmp_path / "operator", key)


def test_the_installed_broker_config_is_readable_its_accounts_private_and_mosquitto_runs_the_space(
        operator_cli, etc, tmp_path):
    user = broker_user()
    port = free_port()
    operator_cli.run("operator", "init", "--space", "host-space", "--name", "主机空间", "--broker-host", "127.0.0.1",
                     "--broker-port", str(port), "--auto-admit", "--kdf", "minimum")
    done = operator_cli.run("operator", "broker-config", "--install", "--mosquitto-dir", str(etc), "--port", str(port))
    snippet, folder = etc / "conf.d" / "dsnode.conf", etc / "dsnode"
    assert f"wrote {snippet}" in done.stdout and "systemctl restart mosquitto" in done.stdout

    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(snippet) == 0o644 and snippet.stat().st_uid == os.geteuid(), "a readable config, no secret in it"
    assert "persistence_location" not in snippet.read_text(), "the main file sets it (twice is refused)"
    assert f"plugin_opt_config_file {folder / 'dynamic-security.json'}" in snippet.read_text()
    assert mode(folder) == 0o700 and mode(folder / "dynamic-security.json") == 0o600
    owner = user.pw_uid if user else os.geteuid()
    assert {p.stat().st_uid for p in (folder, folder / "dynamic-security.json")} == {owner}

    invite = tmp_path / "invite.dsinvite"
    operator_cli.run("operator", "invite", "--out", str(invite))
    member = Cli(tmp_path / "member", operator_cli.key_file)
    member.run("init", "--name", "box-1", "--kdf", "minimum")
    broker = BrokerProcess(MOSQUITTO, debian_main_conf(etc, user), port)
    daemon = None
    try:
        daemon = subprocess.Popen([sys.executable, "-m", "edge", "operator", "run"], cwd=ROOT, env=operator_cli.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        joined = member.run("space", "join", str(invite), "--yes", "--wait", "30")
        assert "Admitted" in joined.stdout, joined.stdout + joined.stderr + broker.log_tail()
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            daemon.communicate(timeout=30)
        broker.stop()
    accounts = (folder / "dynamic-security.json").read_text()
    assert "member-did:key:" in accounts, "the broker saved the member's account in the folder it owns"
    assert (folder / "dynamic-security.json").stat().st_uid == owner


def test_install_says_what_is_missing(operator_cli, tmp_path):
    operator_cli.run("operator", "init", "--space", "host-space", "--name", "x", "--kdf", "minimum")
    missing = operator_cli.run("operator", "broker-config", "--install", "--mosquitto-dir", str(tmp_path / "none"),
                               ok=False)
    assert missing.returncode == 106 and "install mosquitto first" in missing.stderr, missing.stderr
    (tmp_path / "etc" / "conf.d").mkdir(parents=True)
    both = operator_cli.run("operator", "broker-config", "--install", "--password-file", "--mosquitto-dir",
                            str(tmp_path / "etc"), ok=False)
    assert both.returncode == 106 and "--password-file" in both.stderr
    neither = operator_cli.run("operator", "broker-config", ok=False)
    assert neither.returncode == 106 and "--install" in neither.stderr
