"""Membership of data spaces, on the node side (``node.membership``).

Three parts, one object: the join flow (``joining``: invitation → join request → admission with the
membership credential, later credential updates, leaving), the provider's listing requests
(``listings``) and the governance client (``governance``: revocation list, templates, listing
approvals, witnessed checkpoints, filing receipts). ``MembershipService`` combines them; ``base``
holds what they share.
"""

from __future__ import annotations

from appliance.clock import Clock
from appliance.domain.sync import SyncStateChanged
from appliance.events import EventBus
from appliance.services.evidence import EvidenceLog
from appliance.services.identity import IdentityService, KeyRing
from appliance.services.membership.governance import GovernanceClient, RevocationRegistry
from appliance.services.membership.joining import JoinFlow
from appliance.services.membership.listings import CATALOG_ENTRY, ListingClient
from appliance.services.sync import SyncService
from appliance.storage.database import Database


class MembershipService(JoinFlow, ListingClient, GovernanceClient):
    def __init__(self, db: Database, keyring: KeyRing, identity: IdentityService, evidence: EvidenceLog, clock: Clock,
                 bus: EventBus, sync: SyncService, revocations: RevocationRegistry) -> None:
        super().__init__(db, keyring, identity, evidence, clock, bus, sync, revocations)
        bus.subscribe(self._on_link_state, SyncStateChanged)

    def attach(self, sync: SyncService) -> None:
        """Register the member-side handlers and filters on the sync service (before it starts)."""
        self.attach_join(sync)
        self.attach_listings(sync)
        self.attach_governance(sync)


__all__ = ["CATALOG_ENTRY", "MembershipService", "RevocationRegistry"]
