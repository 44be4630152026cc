"""One node's discovery in a child process (inside a network namespace, see tests/netns.py).

``python -m tests.integration.discovery_child ADDRESS DID PORT SERVICE_TYPE [TTL]`` advertises
DID on ADDRESS, browses there, prints one JSON line ``{"ready": …}`` with the addresses its
zeroconf sockets are bound to and send multicast from, then one line per other node it sees, and
runs until its stdin closes (then it says goodbye) or it is killed (then it does not).
"""

from __future__ import annotations

import json
import socket
import sys

from appliance.net.discovery import Advertiser, Browser


def _bound(zc) -> list[list]:
    """Where each of a Zeroconf's responder sockets is bound and sends its multicast from."""
    found = []
    for s in [sender.sock for sender in zc.engine.senders]:  # internal, but it is the thing under test
        multicast_if = socket.inet_ntoa(s.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, 4))
        found.append([*s.getsockname(), multicast_if])
    return found


def main(address: str, did: str, port: str, service_type: str, ttl: str = "120") -> None:
    def seen(sighting) -> None:
        if sighting.did != did:
            print(json.dumps({"did": sighting.did, "addresses": list(sighting.addresses), "port": sighting.port,
                              "spaces": list(sighting.spaces), "name": sighting.name}), flush=True)

    with Advertiser(did, ["netns-test"], int(port), "", [address], name=f"child {address}",
                    service_type=service_type, ttl=int(ttl)) as advertiser, \
            Browser([address], seen, service_type=service_type) as browser:
        print(json.dumps({"ready": {"advertiser": _bound(advertiser._zc), "browser": _bound(browser._zc)}}),
              flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(*sys.argv[1:])
