"""What the parts of ``node.membership`` share: the collaborators, this node's spaces, and telling
the adapters after a handler's transaction commits."""

from __future__ import annotations

import threading
from typing import Protocol

from appliance.clock import Clock, rfc3339
from appliance.domain.sync import SpaceConfig
from appliance.errors import MemberRevoked, NotInSpace
from appliance.events import EventBus
from appliance.services.evidence import EvidenceLog
from appliance.services.identity import IdentityService, KeyRing
from appliance.services.sync import SyncService
from appliance.storage.database import Database


class Revocations(Protocol):
    """The spaces' revocation lists (:class:`~appliance.services.membership.governance.RevocationRegistry`,
    whose module imports this one)."""

    def set(self, space_id: str, statement: dict) -> None: ...

    def is_revoked(self, space_id: str, did: str | None) -> bool: ...

    def accept(self, space_id: str, sender_did: str) -> bool: ...


CATALOG_ENTRY = "dsnode.catalog.entry"


class MembershipBase:
    def __init__(self, db: Database, keyring: KeyRing, identity: IdentityService, evidence: EvidenceLog, clock: Clock,
                 bus: EventBus, sync: SyncService, revocations: Revocations) -> None:
        self._db = db
        self._keys = keyring
        self._identity = identity
        self._evidence = evidence
        self._clock = clock
        self._bus = bus
        self._sync = sync
        self.revocations = revocations
        self._lock = threading.Lock()
        self._published: dict[str, int] = {}  # space → size of the checkpoint last published there
        self._products = None

    @property
    def did(self) -> str:
        return self._keys.node_did

    def _now(self) -> str:
        return rfc3339(self._clock.now())

    def _space(self, space_id: str) -> SpaceConfig | None:
        return next((s for s in self._sync.spaces() if s.space_id == space_id), None)

    def _require(self, space_id: str, statuses: tuple[str, ...] = ("member",)) -> SpaceConfig:
        space = self._space(space_id)
        if space is not None and space.status == "revoked" and "revoked" not in statuses:
            raise MemberRevoked(space_id)
        if space is None or space.status not in statuses:
            raise NotInSpace(space_id)
        return space

    def is_member(self, space_id: str) -> bool:
        space = self._space(space_id)
        return space is not None and space.status == "member"

    def _clear_entry(self, conn, space_id: str, dataset_id: str, status: str) -> None:
        """Mark our listing ``status`` and clear its retained catalog entry (withdrawn, or we left)."""
        conn.execute("UPDATE membership_listing SET status = ?, updated = ? WHERE space_id = ? AND dataset_id = ?",
                     (status, self._now(), space_id, dataset_id))
        self._sync.publish(conn, space_id, topic=f"catalog/{self.did}/{dataset_id}", type=CATALOG_ENTRY, body=None,
                           retained=True)

    def _emit_after_commit(self, event: object) -> None:
        """Tell the adapters once the handler's transaction has committed, never before."""
        self._db.after_commit(lambda: self._bus.emit(event))

    def _from_operator(self, conn, msg, statuses=("member",)) -> SpaceConfig | None:
        space = self._space(msg.space_id)
        if space is None or space.status not in statuses or msg.envelope is None or msg.sender != space.operator_did:
            return None
        return space


def _body(msg) -> dict:
    return msg.body if isinstance(msg.body, dict) else {}

