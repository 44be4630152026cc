"""The provider's side of a pushed transfer (``TransferService.pusher``).

In a push the provider connects to the consumer's data channel rather than the other way round.
The consumer's TransferRequestMessage (format ``dsnode+push``) carries the DataAddress of its
channel; the provider may also find the consumer on the local network (discovery: a verified
peer's address). Both node keys are proven in the channel's handshake, as in a pull, and no
address is trusted; an address the request names is used only on a local network
(loopback, link-local, private-use). Over the connection the consumer asks for the chunks it lacks and the
provider answers them, exactly as in a pull, so the manifest, the checks and the resume are the
same. When no connection can be made (``PUSH_TRIES`` rounds over every address), or the provider
has no direct path at all (relay only), it tells the consumer to fetch through the broker
(``USE_RELAY``), and the relay path takes over. A consumer that hears nothing for PUSH_GRACE
seconds (consumer.py) goes to the relay by itself.

A push started at the provider (``TransferService.push``) begins with ``OFFER``: the provider asks
the consumer's node to request the push (DSP lets only the consumer send the request), naming the
agreement and the provider's process id.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from typing import Any

from appliance.domain.transfer import State
from appliance.errors import ApplianceError
from appliance.net import channel as ch
from appliance.services.delivery import messages as msgs

log = logging.getLogger(__name__)

PUSH_TRIES = 4  # rounds over the consumer's addresses before the relay
OFFER = "dsnode.transfer.offer"  # provider → consumer: please request a push of this agreement
USE_RELAY = "dsnode.transfer.use_relay"  # provider → consumer: no direct route; fetch through the broker
# loopback, RFC 1918 private-use, link-local, IPv6 unique-local (ipaddress's is_private also admits
# documentation and other special ranges, so the networks are named here)
LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "::1/128", "fe80::/10",
    "fc00::/7"))


def on_local_network(host: str) -> bool:
    """Whether a consumer-named address may be connected to: loopback, link-local or private-use.

    A push is between peers on a LAN; an address on the public internet (or a name) is left to
    discovery's verified addresses and the relay.
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in net for net in LOCAL_NETWORKS if net.version == ip.version)


class Pusher:
    # ``service`` is the TransferService (service.py) whose part this is: its store, keys, sync, worker
    def __init__(self, service: Any) -> None:
        self.s = service
        self._lock = threading.Lock()
        self._open: set[ch.Channel] = set()  # pushes under way: closed when the node stops

    def close_all(self) -> None:
        with self._lock:
            channels, self._open = list(self._open), set()
        for channel in channels:
            channel.close()

    def addresses(self, transfer_id: str) -> list[tuple[str, int]]:
        """Where the consumer's channel may be: its request's address, then discovery's."""
        s = self.s
        t = s.get(transfer_id)
        found: list[tuple[str, int]] = []
        if t.path and t.path.startswith("direct:"):
            _, host, port = t.path.split(":", 2)
            if on_local_network(host):
                found.append((host, int(port)))
            else:  # a member's request must not make this node connect out to anywhere it names
                log.info("transfer %s: the consumer's address %s is not on a local network; not connecting to it",
                         t.id, host)
        peers = s.peers.peers() if s.peers is not None else []
        found += [(p.address, p.port) for p in peers if p.did == t.peer and p.verified]
        return list(dict.fromkeys(found))

    def push(self, transfer_id: str) -> None:
        """The pushing thread of one transfer: connect, serve the consumer's asks until it has all."""
        s = self.s
        for attempt in range(PUSH_TRIES):
            for host, port in self.addresses(transfer_id):
                t = s.get(transfer_id)
                if t.state != State.STARTED.value or s._stop.is_set():
                    return
                if self._once(t, host, port):
                    return
            s._stop.wait(0.5 * (attempt + 1))
        t = s.get(transfer_id)
        if t.state == State.STARTED.value and not s._stop.is_set():
            log.info("transfer %s: the consumer's data channel cannot be reached; asking it to use the relay", t.id)

            def write(conn) -> None:
                conn.execute("UPDATE transfer SET path = 'relay' WHERE id = ?", (t.id,))
                s.sync.send(conn, t.space_id, to=t.peer, type=USE_RELAY, body={"transfer": t.peer_pid})

            s.db.write(write)

    def _once(self, t, host: str, port: int) -> bool:
        """One connection to the consumer: True when it said it has every chunk."""
        s = self.s
        try:
            channel = ch.connect(host, port, s._keyring.signing_key(), expect_did=None, timeout=10)
        except ApplianceError as e:
            log.info("transfer %s: cannot connect to the consumer at %s:%s (%s)", t.id, host, port, e.message("en"))
            return False
        with self._lock:
            self._open.add(channel)
        try:
            if channel.peer_did not in (t.peer, s.sync.keys.current(t.peer)):
                log.warning("transfer %s: the data channel at %s:%s is not the consumer's", t.id, host, port)
                return False
            channel.send_json({"push": t.peer_pid, "from": t.id})
            return s.serve_fetches(channel)
        except ApplianceError as e:
            log.info("transfer %s: the push was interrupted: %s", t.id, e.message("en"))
            return False
        finally:
            with self._lock:
                self._open.discard(channel)
            channel.close()

    def on_use_relay(self, conn, msg) -> None:
        """Consumer: the provider found no direct route to this node: fetch through the broker."""
        s = self.s
        body = msg.body if isinstance(msg.body, dict) else {}
        t = s._mine(conn, msg.sender, {"consumerPid": body.get("transfer")})
        if t is None or t.role != "consumer" or t.state != State.STARTED.value:
            return
        conn.execute("UPDATE transfer SET path = 'relay' WHERE id = ?", (t.id,))
        s.db.after_commit(lambda: s._jobs.put(("fetch", t.id)))


def offer_body(agreement_id: str, provider_pid: str) -> dict:
    return {"agreementId": agreement_id, "providerPid": provider_pid, "format": msgs.PUSH}
