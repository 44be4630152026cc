"""Where a pushing provider connects: a consumer-named address only on a local network.

The consumer's request names its data channel's address. A member could name any host (a server on
the provider's network or on the internet): the provider connects only to loopback, link-local and
private-use addresses it is told of, and otherwise to the verified addresses discovery found, or
the relay. (No connection is made here: ``addresses`` only lists where a push would go.)
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from appliance.services.delivery.push import Pusher, on_local_network


@pytest.mark.parametrize(("host", "ok"), [
    ("127.0.0.1", True), ("10.77.0.2", True), ("192.168.1.20", True), ("172.16.4.1", True),
    ("169.254.10.1", True), ("fe80::1", True), ("::1", True), ("fd00::5", True),
    ("203.0.113.5", False), ("8.8.8.8", False), ("2001:4860::8888", False), ("224.0.0.251", False),
    ("0.0.0.0", False), ("example.com", False), ("", False),
])
def test_only_local_network_addresses_named_by_a_consumer_are_used(host, ok):
    assert on_local_network(host) is ok


def _service(path: str, peers=()):
    transfer = SimpleNamespace(id="t1", path=path, peer="did:key:consumer")
    return SimpleNamespace(get=lambda _id: transfer, peers=SimpleNamespace(peers=lambda: list(peers)))


def test_a_public_address_in_the_request_leaves_only_discoverys_verified_addresses():
    seen = [SimpleNamespace(did="did:key:consumer", verified=True, address="192.168.1.20", port=7000),
            SimpleNamespace(did="did:key:consumer", verified=False, address="192.168.1.21", port=7000),
            SimpleNamespace(did="did:key:other", verified=True, address="192.168.1.22", port=7000)]
    assert Pusher(_service("direct:203.0.113.5:443", seen)).addresses("t1") == [("192.168.1.20", 7000)]
    assert Pusher(_service("direct:10.0.0.9:7100", seen)).addresses("t1") == [("10.0.0.9", 7100),
                                                                                ("192.168.1.20", 7000)]
    assert Pusher(_service("direct:8.8.8.8:53")).addresses("t1") == []
