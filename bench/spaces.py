"""What the benchmarks need of a data space, standing on their own (the test suite keeps its own
helpers): a mosquitto on a free loopback port (the demo's :class:`edge.broker_process.BrokerProcess`,
as in the tests), and a space made the way a user makes one (an operator node that writes the
broker's configuration, member nodes that join with invitations). Everything lives in one folder
the caller removes."""

from __future__ import annotations

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
from edge.broker_process import BrokerProcess, free_port, write_config

if TYPE_CHECKING:
    from bench.node_process import NodeProcess

MOSQUITTO = "/usr/sbin/mosquitto"
SPACE = "bench-space"


def wait_for(predicate, timeout: float = 15.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


class Broker(BrokerProcess):
    """One mosquitto process on 127.0.0.1: anonymous and without persistence, or with ``config_text``
    (``{port}`` and ``{dir}`` are filled in). ``start()``, ``stop()``; only errors are logged."""

    def __init__(self, folder: Path, *, config_text: str | None = None, port: int | None = None,
                 start: bool = True) -> None:
        port = port or free_port()
        if config_text is None:
            config_text = "\n".join([f"listener {port} 127.0.0.1", "allow_anonymous true",
                                     "max_queued_messages 1000000"])
        super().__init__(MOSQUITTO, write_config(folder, config_text, port), port, log_types=("error",), start=start)

    @property
    def proc(self) -> subprocess.Popen | None:
        return self._proc

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)


class Space:
    """A space: its operator node, the mosquitto the operator configured, and members."""

    def __init__(self, root: Path, timers: SyncTimers = TIMERS, *, host: str = "127.0.0.1") -> None:
        """``host``: the address members reach the broker on (the broker listens on it and on loopback)."""
        self.root = Path(root)
        self.timers = timers
        self.nodes: list[Node] = []
        self.processes: list[NodeProcess] = []
        port = free_port()
        self.operator = self._node("operator", "运营方")
        self.broker: Broker | None = None
        try:
            self.operator.operator.create_space(space_id=SPACE, name="基准空间", broker_host=host,
                                                broker_port=port, policies=Policies(auto_admit=True))
            files = self.operator.operator.write_broker_config(self.root / "broker", ListenerConfig(port=port))
            text = files[0].read_text(encoding="utf-8")
            if host != "127.0.0.1":  # plain MQTT on a link the benchmark made itself (a veth pair)
                listener = f"listener {port} 127.0.0.1"
                text = text.replace(listener, f"{listener}\nlistener {port} {host}")
            self.broker = Broker(self.root / "broker", config_text=text, port=port)
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
