"""Peers on the local network: members of one space find each other with zeroconf on 127.0.0.1
and verify each other (node key and membership credential through the data channel); a node that
is not a member of a shared space is seen but not verified."""

from __future__ import annotations

import secrets

import pytest

from appliance.host import NodeHost
from appliance.node import Node
from appliance.storage import KdfParams
from tests.spaces import TIMERS, wait_for

pytestmark = pytest.mark.slow


def _host(node, service_type: str) -> NodeHost:
    node.peers.service_type = service_type
    return NodeHost(node, interfaces=("127.0.0.1",))


def test_members_of_a_space_find_and_verify_each_other_and_an_outsider_stays_unverified(space, tmp_path):
    a, b = space.member("a"), space.member("b")
    outsider = Node.init(tmp_path / "outsider", b"passphrase outsider", name="outsider", kdf=KdfParams.fast(),
                         sync_timers=TIMERS)
    service = f"_dsn{secrets.token_hex(3)}._tcp.local."  # this test's own service name: runs in parallel never mix
    for n in (a, b):
        n.stop()  # the hosts start them again, serving on the interfaces
    hosts = [_host(n, service) for n in (a, b, outsider)]
    try:
        for h in hosts:
            h.start()
        wait_for(lambda: [p for p in a.peers.peers() if p.did == b.identity.did and p.verified], 60,
                 "a to verify b")
        wait_for(lambda: [p for p in b.peers.peers() if p.did == a.identity.did and p.verified], 60,
                 "b to verify a")
        seen = wait_for(lambda: [p for p in a.peers.peers() if p.did == outsider.identity.did], 60,
                        "a to see the outsider")
        assert not seen[0].verified, "no credential of a shared space: not verified"
        (peer_b,) = [p for p in a.peers.peers() if p.did == b.identity.did]
        assert peer_b.name == "b" and peer_b.address == "127.0.0.1" and peer_b.port == b.transfers.channel_port
        assert a.identity.did not in [p.did for p in a.peers.peers()], "a node does not list itself"
    finally:
        for h in hosts:
            h.stop()
        outsider.close()
