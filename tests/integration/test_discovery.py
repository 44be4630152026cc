"""Nodes find each other with multicast DNS: on 127.0.0.1, and across a veth pair between two
network namespaces. Every test uses its own service type, so parallel runs do not see each other."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from zeroconf import IPVersion, ServiceInfo, Zeroconf

from appliance.crypto.keys import SigningKey
from appliance.errors import ChannelRefused, LocalText
from appliance.net.discovery import Advertiser, Browser, PeerDirectory
from tests.netns import netns_pair  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ["127.0.0.1"]
CARD = "ab" * 32


@pytest.fixture
def service_type():
    return f"_t{uuid.uuid4().hex[:10]}._tcp.local."


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class Node:
    """One node's advertiser, browser and peer directory on loopback, closed by the test."""

    def __init__(self, service_type, port, spaces=("space-one",), verify=None, name="节点", key=None, sweep_every=15.0):
        self.key = key or SigningKey.generate()
        self.did = self.key.did
        self.port = port
        self.directory = PeerDirectory(verify)
        self.advertiser = Advertiser(self.did, list(spaces), port, CARD, LOOPBACK, name=name, org="示例制造",
                                     service_type=service_type)
        self.browser = Browser(LOOPBACK, self.directory.found, self.directory.gone, service_type=service_type,
                               sweep_every=sweep_every)

    def start(self):
        self.advertiser.start()
        self.browser.start()
        return self

    def close(self):
        self.advertiser.close()
        self.browser.close()
        self.directory.close()


@pytest.fixture
def nodes():
    made = []

    def make(*args, **kwargs):
        node = Node(*args, **kwargs)
        made.append(node)
        return node.start()

    yield make
    for node in made:
        node.close()


def test_two_nodes_on_loopback_find_each_other_and_verify(nodes, service_type):
    asked = []
    keys = [SigningKey.generate(), SigningKey.generate()]
    ports = {keys[0].did: 40001, keys[1].did: 40002}

    def verify(peer):  # stands in for a channel to the peer proving its did
        asked.append(peer)
        return ports.get(peer.did) == peer.port and peer.address == "127.0.0.1"

    a = nodes(service_type, 40001, spaces=("space-one", "space-two"), verify=verify, name="车间一号", key=keys[0])
    b = nodes(service_type, 40002, verify=verify, name="车间二号", key=keys[1])

    assert wait_for(lambda: (p := a.directory.get(b.did)) is not None and p.verified)
    assert wait_for(lambda: (p := b.directory.get(a.did)) is not None and p.verified)
    seen_by_b = b.directory.get(a.did)
    assert (seen_by_b.address, seen_by_b.port, seen_by_b.spaces) == ("127.0.0.1", 40001, ("space-one", "space-two"))
    assert (seen_by_b.name, seen_by_b.org, seen_by_b.card) == ("车间一号", "示例制造", CARD)
    assert "车间一号" in seen_by_b.service and seen_by_b.last_seen > 0
    assert a.directory.get(b.did).spaces == ("space-one",)
    assert {p.did for p in asked} >= {a.did, b.did}
    # each node sees itself too; the node decides what to do with its own did
    assert {p.did for p in a.directory.peers()} == {a.did, b.did}


def test_a_node_that_says_goodbye_is_dropped_at_once(nodes, service_type):
    a = nodes(service_type, 40011)
    b = nodes(service_type, 40012)
    assert wait_for(lambda: a.directory.get(b.did) is not None)
    b.advertiser.close()
    assert wait_for(lambda: a.directory.get(b.did) is None, timeout=5)
    assert not [s for s in a.browser.sightings() if s.did == b.did]


def test_a_node_that_vanishes_is_dropped_when_its_records_expire(nodes, service_type):
    a = nodes(service_type, 40021, sweep_every=1.0)
    did = SigningKey.generate().did
    child = subprocess.Popen([sys.executable, "-m", "tests.integration.discovery_child", "127.0.0.1", did, "40022",
                              service_type, "3"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    try:
        assert "ready" in _lines(child, 1, timeout=20)[0]
        assert wait_for(lambda: a.directory.get(did) is not None)
        child.kill()  # no goodbye: its records expire (ttl 3 s, zeroconf sweeps its cache every 10 s), then it is asked
        child.wait()
        assert wait_for(lambda: a.directory.get(did) is None, timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()


def _junk_info(service_type, label, properties, port=40039):
    return ServiceInfo(service_type, f"{label}.{service_type}", port=port, properties=properties,
                       server=f"{label}.local.", parsed_addresses=["127.0.0.1"], host_ttl=30, other_ttl=30)


def test_junk_advertisements_are_ignored(nodes, service_type, caplog):
    a = nodes(service_type, 40031)
    good = SigningKey.generate().did
    junk = {
        "no-did": {"spaces": "space-one", "port": "40039"},
        "bad-did": {"did": "did:key:zNotAKey", "port": "40039"},
        "web-did": {"did": "did:web:example.com", "port": "40039"},
        "too-long": {"did": good, "port": "40039", **{f"k{i}": "x" * 200 for i in range(10)}},
        "bad-spaces": {"did": good, "spaces": "Space One,../..", "port": "40039"},
        "bad-port": {"did": good, "port": "40040"},
        "bad-card": {"did": good, "port": "40039", "card": "not a hash"},
        "binary": {b"did": b"\xff\xfe", b"port": b"40039"},
    }
    zc = Zeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    try:
        with caplog.at_level("INFO", logger="appliance.net.discovery"):
            for label, properties in junk.items():
                zc.register_service(_junk_info(service_type, label, properties))
            zc.register_service(_junk_info(service_type, "good", {"did": good, "port": "40039"}))
            assert wait_for(lambda: a.directory.get(good) is not None)
            assert wait_for(lambda: len({r.args[0] for r in caplog.records if "ignoring" in r.getMessage()})
                            >= len(junk))
        assert {p.did for p in a.directory.peers()} == {a.did, good}
        assert a.directory.get(good).port == 40039 and a.directory.get(good).spaces == ()
    finally:
        zc.close()


def test_a_peer_that_fails_verification_stays_unverified(nodes, service_type):
    def refuse(peer):
        if peer.port == 40042:
            raise ChannelRefused(peer.did, LocalText("discovery.reason.not_local"))
        return False

    a = nodes(service_type, 40041, verify=refuse)
    b = nodes(service_type, 40042)
    assert wait_for(lambda: a.directory.get(b.did) is not None)
    time.sleep(0.5)
    assert a.directory.get(b.did).verified is False


def test_an_impostor_does_not_displace_a_verified_peer(nodes, service_type):
    real = SigningKey.generate().did
    checked = threading.Event()

    def verify(peer):
        if peer.port == 40053:
            checked.set()
        return peer.did == real and peer.port == 40052  # only the real node can prove the did

    a = nodes(service_type, 40051, verify=verify)
    with Advertiser(real, [], 40052, "", LOOPBACK, name="真的", service_type=service_type):
        assert wait_for(lambda: (p := a.directory.get(real)) is not None and p.verified)
        with Advertiser(real, [], 40053, "", LOOPBACK, name="冒充", service_type=service_type):
            assert checked.wait(10)
            time.sleep(0.3)
            peer = a.directory.get(real)
            assert (peer.port, peer.name, peer.verified) == (40052, "真的", True)


# --- across a veth pair between two network namespaces -------------------------------------------


def _lines(child, count, timeout):
    """``count`` JSON lines from the child's (unbuffered, binary) stdout within ``timeout`` seconds."""
    got, deadline = [], time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = child.stdout.readline()
        if not line:
            break
        got.append(json.loads(line))
    return got


def test_nodes_in_two_namespaces_find_each_other_over_the_veth_pair(netns_pair, service_type):  # noqa: F811
    dids = [SigningKey.generate().did for _ in range(2)]
    children = [
        netns_pair.python(side, "-m", "tests.integration.discovery_child", netns_pair.addresses[side], dids[side],
                          str(40061 + side), service_type, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        for side in (0, 1)
    ]
    for side, child in enumerate(children):
        (ready, found) = _lines(child, 2, timeout=20)
        address = netns_pair.addresses[side]
        # zeroconf sends from, and only from, the veth address of its namespace
        assert ready["ready"]["advertiser"] == [[address, 5353, address]]
        assert ready["ready"]["browser"] == [[address, 5353, address]]
        other = 1 - side
        assert found == {"did": dids[other], "addresses": [netns_pair.addresses[other]], "port": 40061 + other,
                         "spaces": ["netns-test"], "name": f"child {netns_pair.addresses[other]}"}
    for child in children:
        child.stdin.close()
        assert child.wait(timeout=10) == 0


def test_new_spaces_and_card_reach_the_other_node(nodes, service_type):
    a = nodes(service_type, 40071)
    b = nodes(service_type, 40072)
    assert wait_for(lambda: a.directory.get(b.did) is not None)
    b.advertiser.update(spaces=["space-one", "space-three"], card_hash="cd" * 32)
    assert wait_for(lambda: (a.directory.get(b.did).spaces, a.directory.get(b.did).card)
                    == (("space-one", "space-three"), "cd" * 32))
