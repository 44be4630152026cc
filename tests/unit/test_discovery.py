"""What an advertisement may say, which interface addresses discovery may use, and how the peer
directory treats claims it has not verified (no sockets but a bind check of 127.0.0.1)."""

from __future__ import annotations

import threading

import pytest

from appliance.crypto.keys import SigningKey
from appliance.errors import DiscoveryAddressInvalid
from appliance.net.discovery import PeerDirectory, Sighting, check_interfaces, instance_label, parse_sighting

DID = SigningKey.generate().did
SERVICE = "车间一号 (1a2b3c4d)._dsnode._tcp.local."


def _parse(properties, addresses=("192.0.2.7",), port=4000, **kwargs):
    return parse_sighting(SERVICE, properties, addresses, port, seen=1.0, **kwargs)


def test_a_well_formed_advertisement_is_read():
    found = _parse({b"did": DID.encode(), b"spaces": b"space-one,space-two", b"port": b"4000",
                    b"card": b"ab" * 32, b"name": "车间一号".encode(), b"org": "示例".encode()})
    assert found == Sighting(service=SERVICE, did=DID, addresses=("192.0.2.7",), port=4000,
                             spaces=("space-one", "space-two"), card="ab" * 32, name="车间一号", org="示例", seen=1.0)
    assert _parse({b"did": DID.encode()}).name == "车间一号 (1a2b3c4d)"  # no name: the service label


@pytest.mark.parametrize("properties, addresses, reason", [
    ({b"spaces": b"a-b"}, None, "no valid did"),
    ({b"did": b"did:key:z6MkNotAKey"}, None, "no valid did"),
    ({b"did": None}, None, "no valid did"),
    ({b"did": b"\xff"}, None, "TXT entry not text"),
    ({b"did": DID.encode(), b"x": b"y" * 1400}, None, "TXT record too long"),
    ({b"did": DID.encode(), b"spaces": b"UPPER"}, None, "bad spaces"),
    ({b"did": DID.encode(), b"spaces": ",".join(f"sp{i}" for i in range(40)).encode()}, None, "bad spaces"),
    ({b"did": DID.encode(), b"port": b"4001"}, None, "port differs from the SRV record"),
    ({b"did": DID.encode(), b"port": "٤٠٠٠".encode()}, None, "port differs from the SRV record"),
    ({b"did": DID.encode(), b"card": b"short"}, None, "bad card hash"),
    ({b"did": DID.encode()}, ("127.0.0.1", "224.0.0.251", "0.0.0.0", "junk"), "no usable address"),
])
def test_junk_is_named_not_raised(properties, addresses, reason):
    assert _parse(properties, addresses or ("192.0.2.7",)) == reason


def test_loopback_addresses_count_only_for_a_browser_on_loopback():
    assert _parse({b"did": DID.encode()}, ("127.0.0.1",), allow_loopback=True).addresses == ("127.0.0.1",)
    assert _parse({b"did": DID.encode()}, ("127.0.0.1", "192.0.2.7")).addresses == ("192.0.2.7",)


def test_interface_addresses_are_checked():
    assert check_interfaces(["127.0.0.1", "127.0.0.1"]) == ("127.0.0.1",)
    for bad in ([], ["eth0"], ["::1"], ["0.0.0.0"], ["224.0.0.251"], ["203.0.113.250"]):
        with pytest.raises(DiscoveryAddressInvalid):
            check_interfaces(bad)
    with pytest.raises(DiscoveryAddressInvalid) as mixed:
        check_interfaces(["127.0.0.1", "192.0.2.2"])
    assert "cannot be mixed" in mixed.value.message("en")
    assert mixed.value.message("zh_CN") == ("127.0.0.1 不能用于在局域网中查找节点：回环地址不能与网络地址混用，"
                                            "否则回环地址会被公布到网络上。请填写本机网络接口上的地址。")


def test_instance_labels_fit_a_dns_label():
    label = instance_label("车间.一号" * 20, DID)
    assert len(label.encode()) <= 63 and "." not in label and label.endswith(")")


def _sighting(service="a._dsnode._tcp.local.", did=DID, addresses=("192.0.2.7",), port=4000, seen=1.0):
    return Sighting(service=service, did=did, addresses=addresses, port=port, spaces=(), card="", name="甲", org="",
                    seen=seen)


class Verifier:
    """``verify`` that accepts the ports it is told and records what it was asked."""

    def __init__(self, good_ports):
        self.good, self.asked, self.done = set(good_ports), [], threading.Event()

    def __call__(self, peer):
        self.asked.append((peer.address, peer.port))
        self.done.set()
        return peer.port in self.good


def _settled(directory, verifier, count):
    for _ in range(200):
        if len(verifier.asked) >= count:
            break
        verifier.done.wait(0.05)
        verifier.done.clear()
    threading.Event().wait(0.05)  # the directory applies the answer just after verify returns
    return directory


def test_the_directory_verifies_each_address_until_one_proves_the_did():
    verifier = Verifier({4000})
    with PeerDirectory(verifier) as directory:
        directory.found(_sighting(addresses=("192.0.2.7", "192.0.2.8")))
        assert directory.get(DID).verified is False
        verifier.good = set()
        _settled(directory, verifier, 2)
        assert verifier.asked == [("192.0.2.7", 4000), ("192.0.2.8", 4000)]
        assert directory.get(DID).verified is False


def test_a_verified_peer_moves_only_when_the_new_place_verifies():
    changes = []
    verifier = Verifier({4000})
    with PeerDirectory(verifier, on_change=changes.append) as directory:
        directory.found(_sighting())
        _settled(directory, verifier, 1)
        assert directory.get(DID).verified
        directory.found(_sighting(service="impostor._dsnode._tcp.local.", port=5000))
        _settled(directory, verifier, 2)
        assert (directory.get(DID).port, directory.get(DID).verified) == (4000, True)
        verifier.good.add(6000)
        directory.found(_sighting(port=6000, seen=2.0))  # the same service moved to another port
        _settled(directory, verifier, 3)
        assert (directory.get(DID).port, directory.get(DID).verified, directory.get(DID).last_seen) == (6000, True, 2.0)
        directory.gone("a._dsnode._tcp.local.")
        # the impostor's claim is all that is left: shown, but not verified
        assert (directory.get(DID).port, directory.get(DID).verified) == (5000, False)
        directory.gone("impostor._dsnode._tcp.local.")
        assert directory.get(DID) is None and directory.peers() == []
    assert DID in changes


def test_a_directory_without_verify_lists_unverified_peers_and_starts_no_thread():
    before = threading.active_count()
    with PeerDirectory() as directory:
        directory.found(_sighting())
        assert [p.verified for p in directory.peers()] == [False]
        assert threading.active_count() == before


def test_verify_errors_count_as_failures(observed_errors):
    def broken(peer):
        raise RuntimeError("a bug in verify")

    with PeerDirectory(broken) as directory:
        directory.found(_sighting())
        for _ in range(100):
            if observed_errors:
                break
            threading.Event().wait(0.05)
        assert directory.get(DID).verified is False
    assert "failed unexpectedly" in observed_errors[0].getMessage()
