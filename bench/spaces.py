"""What the benchmarks need of a data space, standing on their own (the test suite keeps its own
helpers): a mosquitto on a free loopback port, and a space made the way a user makes one (an
operator node that writes the broker's configuration, member nodes that join with invitations).
Everything lives in one folder the caller removes."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.domain.sync import SyncTimers
from appliance.node import Node
from appliance.operator.broker_config import ListenerConfig
from appliance.operator.space import Policies
from appliance.storage import KdfParams
from bench.node_settings import TIMERS, passphrase  # noqa: F401 - the benchmarks take them from here too

if TYPE_CHECKING:
    from bench.node_process import NodeProcess

MOSQUITTO = "/usr/sbin/mosquitto"
SPACE = "bench-space"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 15.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


class Broker:
    """One mosquitto process on 127.0.0.1: anonymous and without persistence, or with ``config_text``
    (``{port}`` and ``{dir}`` are filled in). ``start()``, ``stop()``."""

    def __init__(self, folder: Path, *, config_text: str | None = None, port: int | None = None,
                 start: bool = True) -> None:
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        if config_text is None:
            config_text = "\n".join([f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                                     "max_queued_messages 1000000"])
        lines = config_text.replace("{port}", str(self.port)).replace("{dir}", str(self.dir)).rstrip().splitlines()
        keys = {line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")}
        if "log_dest" not in keys:
            lines += [f"log_dest file {self.dir / 'mosquitto.log'}", "log_type error"]
        if os.geteuid() == 0 and "user" not in keys:  # mosquitto would drop root for a user that cannot read here
            lines.append(f"user {pwd.getpwuid(0).pw_name}")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.proc: subprocess.Popen | None = None
        if start:
            self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode} (see {self.dir / 'mosquitto.log'})")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None


class Space:
    """A space: its operator node, the mosquitto the operator configured, and members."""

    def __init__(self, root: Path, timers: SyncTimers = TIMERS) -> None:
        self.root = Path(root)
        self.timers = timers
        self.nodes: list[Node] = []
        self.processes: list[NodeProcess] = []
        port = free_port()
        self.operator = self._node("operator", "运营方")
        self.broker: Broker | None = None
        try:
            self.operator.operator.create_space(space_id=SPACE, name="基准空间", broker_host="127.0.0.1",
                                                broker_port=port, policies=Policies(auto_admit=True))
            files = self.operator.operator.write_broker_config(self.root / "broker", ListenerConfig(port=port))
            self.broker = Broker(self.root / "broker", config_text=files[0].read_text(encoding="utf-8"), port=port)
            self.operator.start()
        except BaseException:
            self.close()
            raise

    def _node(self, label: str, name: str) -> Node:
        node = Node.init(self.root / label, passphrase(label), name=name, org="基准",
                         kdf=KdfParams.fast(), sync_timers=self.timers)
        self.nodes.append(node)
        return node

    def member(self, label: str) -> Node:
        """A new node that joins with an invitation and is admitted (auto-admit)."""
        node = self._node(label, label)
        node.membership.join(self.operator.operator.invite(org="基准").code())
        node.start()
        wait_for(lambda: node.sync.space(SPACE).status == "member", what=f"{label} to be admitted")
        return node

    def in_own_process(self, node: Node) -> NodeProcess:
        """Close ``node`` here and serve it from a process of its own (stopped by :meth:`close`)."""
        from bench.node_process import NodeProcess

        label = node.home.name
        self.nodes.remove(node)
        node.close()
        proc = NodeProcess(self.root / label, label)
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        for node in reversed(self.nodes):
            node.close()
        if self.broker is not None:
            self.broker.stop()
