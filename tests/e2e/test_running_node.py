"""A running node (`dsnode run`, `dsnode operator run`) in its own process, and the CLI beside it in
others, as an edge box's admin uses them: every command works while the node runs, with the same
output and exit code as when it does not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from appliance.host import ControlClient
from tests.brokers import Mosquitto, free_port
from tests.e2e.conftest import ROOT, Cli


class Daemon:
    """`dsnode run` (or `operator run`) in a child process, until :meth:`stop` (SIGTERM). Its output
    is read as it comes (``stdout``, ``stderr`` once it ended): a node logs an event line per message
    applied, and a pipe nobody reads stops it once the pipe's buffer is full."""

    def __init__(self, cli: Cli, *args: str, env: dict | None = None) -> None:
        self.cli = cli
        self.proc = subprocess.Popen([sys.executable, "-m", "edge", *(args or ("run",))], cwd=ROOT,
                                     env=env or cli.env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._out: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._readers = [threading.Thread(target=lambda f=f, into=into: into.extend(iter(f.readline, "")),
                                          name=f"daemon-{name}", daemon=True)
                         for name, f, into in (("stdout", self.proc.stdout, self._out["stdout"]),
                                               ("stderr", self.proc.stderr, self._out["stderr"]))]
        for reader in self._readers:
            reader.start()
        client = ControlClient(cli.home)
        deadline = time.monotonic() + 30
        while not client.running():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self._ended(10)
                raise AssertionError(f"the node did not start ({self.proc.returncode}):\n{self.stdout}\n{self.stderr}")
            time.sleep(0.05)
        self.stdout = self.stderr = ""

    def _ended(self, timeout: float) -> None:
        self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()
        self.stdout, self.stderr = "".join(self._out["stdout"]), "".join(self._out["stderr"])

    def stop(self, timeout: float = 20) -> float:
        """SIGTERM; returns how long the node took to exit (it must exit 0)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self._ended(timeout)
        assert self.proc.returncode == 0, self.stderr
        return time.monotonic() - started

    def kill(self) -> None:
        self.proc.kill()
        self._ended(10)


def _run_in(cli: Cli, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=cwd,
                          env={**cli.env(), "PYTHONPATH": str(ROOT)}, timeout=120)


READS = [
    ("identity", "show"), ("resource", "list"), ("resource", "list", "--json"), ("product", "list"),
    ("contract", "list"), ("space", "list"), ("evidence", "list", "--limit", "3"),
    ("product", "show", "no-such-product"), ("resource", "show", "urn:uuid:0"), ("operator", "members"),
]


def _results(cli: Cli) -> list[tuple[int, str, str]]:
    out = []
    for args in READS:
        proc = cli.run(*args, ok=False)
        out.append((proc.returncode, proc.stdout, proc.stderr))
    return out


@pytest.fixture
def box(initialised, tmp_path) -> Cli:
    data = tmp_path / "data"
    data.mkdir()
    (data / "line1.csv").write_text("machine,temperature,operator\nM1,71.5,张三\nM2,69.0,李四\n", encoding="utf-8")
    initialised.data = data
    return initialised


def test_every_command_gives_the_same_output_and_exit_code_whether_or_not_a_node_runs(box):
    box.run("resource", "add", str(box.data / "line1.csv"), "--title", "Line 1",
            env=box.env(DSNODE_ALLOWED_ROOTS=str(box.data)))
    # evidence list shows the newest entries: make the store quiet first (a close signs a checkpoint)
    box.run("evidence", "checkpoint")
    alone = _results(box)
    daemon = Daemon(box)
    try:
        running = _results(box)
    finally:
        daemon.stop()
    for args, a, r in zip(READS, alone, running, strict=True):
        assert a[0] == r[0], f"dsnode {' '.join(args)}: exit {a[0]} alone, {r[0]} beside the running node"
        if args[:2] != ("evidence", "list"):  # the running node signs checkpoints of its own
            assert a[1] == r[1], f"dsnode {' '.join(args)}: the output differs"
        assert a[2] == r[2], f"dsnode {' '.join(args)}: the errors differ"
    assert alone[READS.index(("product", "show", "no-such-product"))][0] == 72


def test_while_the_node_runs_staff_register_package_back_up_and_checkpoint_through_it(box, tmp_path):
    work = tmp_path / "desk"
    work.mkdir()
    daemon = Daemon(box, env=box.env(DSNODE_ALLOWED_ROOTS=str(box.data)))  # what the node may read is its own setting
    try:
        env_cli = Cli(box.home, box.key_file)
        added = _run_in(env_cli, box.data, "resource", "add", "line1.csv", "--title", "Line 1", "--json")
        assert added.returncode == 0, added.stderr
        rid = json.loads(added.stdout)["resource"]["id"]
        made = box.run("product", "create", "--title", "Line 1 readings", "--resource", rid, "--json")
        assert json.loads(made.stdout)["id"]
        assert '"event"' not in made.stderr, "the node's own event log stays in the node's log"
        backup = _run_in(env_cli, work, "backup", "box.bak")
        assert backup.returncode == 0, backup.stderr
        assert (work / "box.bak").stat().st_size > 0, "a relative path is the caller's folder, not the daemon's"
        checkpoint = box.run("evidence", "checkpoint")
        assert "did:key:" in checkpoint.stdout
        verify = box.run("evidence", "verify")
        assert verify.returncode == 0
    finally:
        took = daemon.stop()
    assert took < 15, f"SIGTERM took {took:.1f} s"
    listed = json.loads(box.run("resource", "list", "--json").stdout)
    assert [r["title"] for r in listed] == ["Line 1"]
    assert not (box.home / "control.sock").exists()


@pytest.mark.parametrize("args", [("init",), ("restore", "x.bak"), ("passphrase", "change"), ("run",)])
def test_commands_that_need_the_store_alone_say_that_a_node_runs(box, args):
    daemon = Daemon(box)
    try:
        proc = box.run(*args, ok=False)
        zh = box.run(*args, ok=False, env=box.env(DSNODE_LANG="zh_CN"))
    finally:
        daemon.stop()
    assert proc.returncode == 141, proc.stderr
    assert f"dsnode {args[0]}" in proc.stderr and "Stop the running node" in proc.stderr
    assert zh.returncode == 141 and "运行中的节点" in zh.stderr


def test_a_killed_node_leaves_nothing_that_stops_the_next_command_or_the_next_start(box):
    daemon = Daemon(box)
    daemon.kill()
    assert box.run("identity", "show").returncode == 0  # opens the store itself
    again = Daemon(box)
    try:
        assert box.run("resource", "list").returncode == 0
    finally:
        again.stop()


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
                    reason="needs root (to act as another user) and the system python")
def test_another_user_cannot_use_the_control_socket(box):
    daemon = Daemon(box)
    try:
        code = ("import socket,sys; s=socket.socket(socket.AF_UNIX)\n"
                "try:\n s.connect(sys.argv[1]); print('connected')\nexcept PermissionError: print('refused')")
        proc = subprocess.run(["/usr/bin/python3", "-c", code, str(box.home / "control.sock")], capture_output=True,
                              text=True, user=65534, group=65534, timeout=30)
    finally:
        daemon.stop()
    assert proc.stdout.strip() == "refused", proc.stdout + proc.stderr


@pytest.mark.slow
def test_an_operator_admits_a_member_and_sees_live_counters_while_both_nodes_run(tmp_path, cli):
    key = tmp_path / "operator.key"
    key.write_text("operator passphrase 2026\n")
    key.chmod(0o600)
    operator = Cli(tmp_path / "operator", key)
    port = free_port()
    operator.run("operator", "init", "--space", "run-space", "--name", "运行空间", "--broker-host", "127.0.0.1",
                 "--broker-port", str(port), "--kdf", "minimum")  # join requests wait for review
    out = tmp_path / "broker"
    operator.run("operator", "broker-config", "--out", str(out), "--port", str(port))
    broker = Mosquitto(out, config_text=(out / "mosquitto.conf").read_text(), port=port)
    op = member = None
    try:
        op = Daemon(operator, "operator", "run")
        notices: list[dict] = []
        events = ControlClient(operator.home).events(("RequestsWaiting",))
        assert next(events)["event"] == "hello"

        def watch() -> None:
            for e in events:
                if e.get("event") == "RequestsWaiting":
                    notices.append(e)
                    return

        import threading

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code = operator.run("operator", "invite", "--org", "示例制造").stdout.strip().splitlines()[-1]
        cli.run("init", "--name", "box-1", "--org", "示例制造", "--kdf", "minimum")
        member = Daemon(cli)
        cli.run("space", "join", code, "--yes")  # through the member's running node, which sends it
        pending = []
        deadline = time.monotonic() + 30
        while not pending and time.monotonic() < deadline:
            pending = json.loads(operator.run("operator", "admissions", "--json").stdout)
            pending = [a for a in pending if a["status"] == "pending"]
            time.sleep(0.3)
        assert pending, "the join request reached the running operator"
        watcher.join(30)
        assert notices and notices[0]["admissions"] == 1, "the event stream told that a join request waits"
        events.close()
        operator.run("operator", "admit", str(pending[0]["id"]))  # against the running operator node
        deadline = time.monotonic() + 30
        status = {}
        while time.monotonic() < deadline:
            (status,) = json.loads(cli.run("space", "status", "--json").stdout)
            if status["membership"] == "member" and status["received"] > 0:
                break
            time.sleep(0.3)
        assert status["membership"] == "member", status
        assert status["sent"] > 0 and status["received"] > 0, "live counters come from the running node"
        member.stop()
        member = None
        (after,) = json.loads(cli.run("space", "status", "--json").stdout)
        assert after["sent"] >= status["sent"] and after["received"] >= status["received"], \
            "a stopped node still shows the figures of its last run"
    finally:
        for d in (member, op):
            if d is not None:
                d.stop()
        broker.stop()
    assert "join request" in op.stderr, "the running operator said that a join request waits"


def test_under_systemd_the_node_says_ready_pings_the_watchdog_reloads_on_sighup_and_says_stopping(box, tmp_path):
    import socket

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    try:
        daemon = Daemon(box, env=box.env(NOTIFY_SOCKET=str(path), WATCHDOG_USEC="1000000"))
        messages = []
        try:
            while not any("WATCHDOG=1" in m for m in messages):
                messages.append(sock.recv(4096).decode())
            assert messages[0].startswith("READY=1"), messages
            daemon.proc.send_signal(signal.SIGHUP)
            assert box.run("identity", "show").returncode == 0  # still serving after the reload
        finally:
            daemon.stop()
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
    finally:
        sock.close()
    assert "configuration reloaded" in daemon.stderr


def test_the_headless_daemon_never_loads_qt(box):
    daemon = Daemon(box)
    try:
        maps = Path(f"/proc/{daemon.proc.pid}/maps").read_text()
    finally:
        daemon.stop()
    assert "PySide6" not in maps and "libQt" not in maps


def test_a_file_dropped_into_a_watched_folder_shows_up_through_the_running_node(box, tmp_path):
    inbox = tmp_path / "line3"
    inbox.mkdir()
    config = tmp_path / "dsnode.toml"
    config.write_text(f'[[watch]]\nfolder = "{inbox}"\npattern = "*.csv"\nsettle_seconds = 0.5\n'
                      'poll_seconds = 0.2\ntitle = "Line 3 {stem}"\n', encoding="utf-8")
    env = box.env(DSNODE_CONFIG=str(config))
    assert "are valid" in box.run("config", "check", env=env).stdout
    daemon = Daemon(box, env=env)
    try:
        (inbox / "part.csv.tmp").write_text("machine,temp\nM1,20\n", encoding="utf-8")
        (inbox / "part.csv.tmp").rename(inbox / "hour-07.csv")  # the machine's writer renames when done
        deadline = time.monotonic() + 30
        titles: list[str] = []
        while "Line 3 hour-07" not in titles and time.monotonic() < deadline:
            titles = [r["title"] for r in json.loads(box.run("resource", "list", "--json", env=env).stdout)]
            time.sleep(0.3)
    finally:
        daemon.stop()
    assert titles == ["Line 3 hour-07"]


def test_ctrl_c_on_a_command_served_by_the_running_node_is_one_line_and_exit_130(box):
    daemon = Daemon(box)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "edge", "space", "sync", "--for", "8"], cwd=ROOT,
                                env=box.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)  # the command is under way in the running node (a slow start is not what is tested)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert box.run("identity", "show").returncode == 0, "the running node goes on serving"
    finally:
        daemon.stop()
    assert proc.returncode == 130 and "Traceback" not in err, err
