"""A whole data space for tests: a real mosquitto configured by the operator, the operator node, and
member nodes that join with invitations. Everything lives in one temporary folder."""

from __future__ import annotations

import time
from pathlib import Path

from appliance.domain.sync import SyncTimers
from appliance.node import Node
from appliance.operator.broker_config import ListenerConfig
from appliance.operator.space import Policies
from appliance.storage import KdfParams
from tests.brokers import Mosquitto, free_port

SPACE = "test-space"
TIMERS = SyncTimers(backoff_initial=0.05, backoff_max=0.5, reconcile_poll=0.5, stop_timeout=1.0, resend_after=0.5)


def wait_for(predicate, timeout: float = 15.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class SpaceHarness:
    def __init__(self, root: Path, *, auto_admit: bool = True, mode: str = "dynsec", embedded: bool = False) -> None:
        """``embedded=True``: the embedded pure-Python broker instead of mosquitto (dynsec mode)."""
        self.root = Path(root)
        self.port = free_port()
        self.nodes: list[Node] = []
        self.operator = self._node("operator", "运营方")
        self.operator.operator.create_space(space_id=SPACE, name="测试空间", broker_host="127.0.0.1",
                                            broker_port=self.port, policies=Policies(auto_admit=auto_admit))
        if embedded:
            from edge.broker_process import start_embedded_broker

            self.broker = start_embedded_broker(self.operator, ListenerConfig(port=self.port), self.root / "broker")
        else:
            files = self.operator.operator.write_broker_config(self.root / "broker", ListenerConfig(port=self.port),
                                                               mode=mode)
            self.broker = Mosquitto(self.root / "broker", config_text=files[0].read_text(), port=self.port)
        self.operator.start()

    def _node(self, label: str, name: str, org: str = "") -> Node:
        node = Node.init(self.root / label, b"passphrase " + label.encode(), name=name, org=org, kdf=KdfParams.fast(),
                         sync_timers=TIMERS)
        self.nodes.append(node)
        return node

    def new_node(self, label: str, name: str | None = None, org: str = "示例制造") -> Node:
        return self._node(label, name or label, org)

    def join(self, node: Node, code: str | None = None, *, wait: bool = True) -> str:
        code = code or self.operator.operator.invite(org=node.identity.org).code()
        node.membership.join(code)
        if not node.sync.running:
            node.start()
        if wait:
            self.wait_status(node, "member")
        return code

    def member(self, label: str) -> Node:
        node = self.new_node(label)
        self.join(node)
        return node

    @staticmethod
    def status(node: Node) -> str:
        return node.sync.space(SPACE).status

    def wait_status(self, node: Node, status: str, timeout: float = 15.0) -> None:
        wait_for(lambda: self.status(node) == status, timeout, f"{node.identity.name} to be {status}")

    @staticmethod
    def settle(*nodes: Node, timeout: float = 10.0) -> None:
        for node in nodes:
            if node.sync.running:
                node.sync.wait_settled(timeout=timeout, quiet=0.3)

    def close(self) -> None:
        for node in reversed(self.nodes):
            node.close()
        self.broker.stop()


# --- contracts between members (shared by the contract tests) --------------------------------


def list_entry(space: "SpaceHarness", provider, entry: dict, *consumers, dataset: str = "ds-1") -> None:
    """``provider`` lists ``entry`` as ``dataset``, the operator approves it, and every consumer sees it."""
    provider.membership.request_listing(SPACE, dataset, entry)
    request = wait_for(lambda: space.operator.operator.listings("pending"), what="the listing request")[0]
    space.operator.operator.approve_listing(request.id)
    for consumer in consumers:
        wait_for(lambda c=consumer: [e for e in c.sync.catalog(SPACE) if e.dataset_id == dataset],
                 what="the catalog entry")


def contract_state(node, nid: str) -> str:
    return node.contracts.get(nid).state


def peer_of(node, nid: str):
    """``node``'s side of the negotiation its peer calls ``nid``."""
    return wait_for(lambda: [n for n in node.contracts.list() if n.peer_pid == nid], what="the peer's negotiation")[0]


def finalized(provider, consumer, cid: str) -> str:
    """Wait until both sides of the consumer's negotiation ``cid`` are FINALIZED; the provider's id."""
    wait_for(lambda: contract_state(consumer, cid) == "FINALIZED", what="FINALIZED at the consumer")
    p = peer_of(provider, cid)
    wait_for(lambda: contract_state(provider, p.id) == "FINALIZED", what="FINALIZED at the provider")
    return p.id
