"""SIGKILL either node at each step of a negotiation; after a restart it ends FINALIZED, signed by
both and filed, exactly like an uninterrupted run (state and outgoing message share a transaction)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from appliance.node import Node
from tests.spaces import SPACE, TIMERS, SpaceHarness, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ENTRY = {"@type": "dcat:Dataset", "dct:title": "温度数据",
         "odrl:hasPolicy": [{"@id": "urn:offer:trial", "@type": "odrl:Offer", "permission": [{"action": "use"}]}]}


class Child:
    def __init__(self, home: Path, label: str, *extra: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.integration.contract_child", str(home), label,
                                      *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def saw(self, state: str) -> bool:
        return any(line.startswith("state ") and line.endswith(" " + state) for line in self.lines)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)
        self.proc.stdout.close()


@pytest.fixture
def space(tmp_path):
    harness = SpaceHarness(tmp_path / "space")
    provider, consumer = harness.member("provider"), harness.member("consumer")
    provider.contracts.add_rule({"offer": "urn:offer:trial"})
    provider.membership.request_listing(SPACE, "ds-1", ENTRY)
    request = wait_for(lambda: harness.operator.operator.listings("pending"), what="the listing request")[0]
    harness.operator.operator.approve_listing(request.id)
    wait_for(lambda: consumer.sync.catalog(SPACE), what="the catalog entry")
    yield harness, provider, consumer
    harness.close()


def _final(node: Node) -> tuple[str, str | None, bool]:
    (n,) = node.contracts.list()
    signed = node.contracts.agreement(n.id)
    return n.state, signed and signed["status"], bool(signed and signed["consumer_signature"])


def _reopen(harness, label: str) -> Node:
    node = Node.open(harness.root / label, b"passphrase " + label.encode(), sync_timers=TIMERS)
    harness.nodes.append(node)
    return node


@pytest.mark.parametrize("at", ["REQUESTED", "AGREED", "VERIFIED"])
def test_killing_the_consumer_at_each_step(space, at):
    harness, provider, consumer = space
    consumer.close()
    child = Child(harness.root / "consumer", "consumer", "ds-1")
    try:
        wait_for(lambda: child.saw(at), what=f"the consumer to reach {at}")
    finally:
        child.kill()
    again = Child(harness.root / "consumer", "consumer")
    try:
        wait_for(lambda: again.saw("FINALIZED"), what="the restarted consumer to finalize")
        wait_for(lambda: provider.contracts.list() and provider.contracts.list()[0].state == "FINALIZED",
                 what="the provider to finalize")
    finally:
        again.kill()
    assert _final(_reopen(harness, "consumer")) == ("FINALIZED", "active", True)
    assert _final(provider) == ("FINALIZED", "active", True)


@pytest.mark.parametrize("at", ["REQUESTED", "AGREED", "VERIFIED", "FINALIZED"])
def test_killing_the_provider_at_each_step(space, at):
    harness, provider, consumer = space
    provider.close()
    child = Child(harness.root / "provider", "provider")
    wait_for(lambda: "ready" in child.lines, what="the provider child")
    cid = consumer.contracts.request(SPACE, "ds-1")
    try:
        wait_for(lambda: child.saw(at), what=f"the provider to reach {at}")
    finally:
        child.kill()
    again = Child(harness.root / "provider", "provider")
    try:
        wait_for(lambda: consumer.contracts.get(cid).state == "FINALIZED", what="the consumer to finalize")
        wait_for(lambda: again.saw("FINALIZED"), what="the restarted provider to finalize")
    finally:
        again.kill()
    assert _final(consumer) == ("FINALIZED", "active", True)
    assert _final(_reopen(harness, "provider")) == ("FINALIZED", "active", True)
