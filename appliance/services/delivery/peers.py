"""PeerService (``node.peers``): nodes of the same spaces on the local network.

The node advertises itself with zeroconf (net/discovery.py) on the interfaces the settings name,
and browses for others. A discovered node is trusted only once a signed challenge proved it: the
data channel's handshake (net/channel.py) proves it holds the key of the did it advertises, and
inside the channel both sides show their membership credentials; the peer counts as verified when
its credential is valid, issued by the operator of a space both are members of, and not revoked.
Addresses prove nothing: a transfer checks the node key again when it connects.
"""

from __future__ import annotations

import json
import logging

from appliance.errors import ApplianceError
from appliance.net import channel as ch
from appliance.net import discovery
from appliance.services.contracts import terms

log = logging.getLogger(__name__)


class PeerService:
    def __init__(self, db, keyring, clock, sync, revocations, transfers, identity) -> None:
        self.db, self._keyring, self.clock, self.sync = db, keyring, clock, sync
        self._revocations, self._transfers, self._identity = revocations, transfers, identity
        self.did: str = keyring.node_did
        self._directory: discovery.PeerDirectory | None = None
        self._browser: discovery.Browser | None = None
        self._advertiser: discovery.Advertiser | None = None
        self.service_type = discovery.SERVICE_TYPE

    def start(self, interfaces: tuple[str, ...]) -> None:
        """Advertise and browse on ``interfaces`` (IP addresses of this machine). Nothing when empty."""
        if not interfaces or self._directory is not None or self._transfers.channel_port is None:
            return
        addresses = discovery.check_interfaces(interfaces)
        self._directory = discovery.PeerDirectory(self._verify)
        self._advertiser = discovery.Advertiser(self.did, self._spaces(), self._transfers.channel_port, "",
                                                addresses, name=self._identity.name, org=self._identity.org,
                                                service_type=self.service_type).start()
        self._browser = discovery.Browser(addresses, self._directory.found, self._directory.gone,
                                          service_type=self.service_type).start()

    def stop(self) -> None:
        for part in (self._browser, self._advertiser, self._directory):
            if part is not None:
                part.close()
        self._browser = self._advertiser = self._directory = None

    def peers(self) -> list[discovery.Peer]:
        """The other nodes seen on the network, verified or not (this node left out)."""
        if self._directory is None:
            return []
        return [p for p in self._directory.peers() if p.did != self.did]

    def credentials(self) -> dict[str, dict]:
        """This node's membership credentials, by space (what it shows a peer that asks)."""
        sql = "SELECT space_id, credential FROM sync_space WHERE status = 'member' AND credential IS NOT NULL"
        rows = self.db.read(lambda c: c.execute(sql).fetchall())
        return {space_id: json.loads(cred) for space_id, cred in rows}

    def _spaces(self) -> list[str]:
        return sorted(self.credentials())

    def shared_member(self, did: str, offered: object) -> bool:
        """Whether ``did`` showed a valid, unrevoked credential of a space this node is a member of."""
        mine = self.credentials()
        now = self.clock.now()
        for space_id, credential in offered.items() if isinstance(offered, dict) else ():
            if space_id not in mine or self._revocations.is_revoked(space_id, did):
                continue
            who = self.db.read(lambda c, s=space_id, cr=credential: terms.member(c, s, did, cr, now))
            if who.verified:
                return True
        return False

    def _verify(self, peer: discovery.Peer) -> bool:
        try:
            channel = ch.connect(peer.address, peer.port, self._keyring.signing_key(), expect_did=peer.did,
                                 timeout=5)
        except ApplianceError as e:
            log.info("peer %s at %s:%s not verified: %s", peer.did, peer.address, peer.port, e.message("en"))
            return False
        try:
            channel.send_json({"type": "hello", "credentials": self.credentials()})
            answer = channel.recv_json(timeout=5)
        except ApplianceError as e:
            log.info("peer %s did not answer the challenge: %s", peer.did, e.message("en"))
            return False
        finally:
            channel.close()
        return answer.get("type") == "hello" and self.shared_member(peer.did, answer.get("credentials"))
