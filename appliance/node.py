"""The Node: builds and wires the services over one store. The one object the GUI and daemon hold."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance.clock import Clock, SystemClock, rfc3339
from appliance.domain.evidence import Action
from appliance.errors import ApplianceError, EvidenceWriteFailed, StoreCorrupt, store_reason
from appliance.events import EventBus
from appliance.operator.service import OperatorService
from appliance.operator.space import OperatorContext
from appliance.services.catalog.products import ProductService
from appliance.services.catalog.resources import ResourceService
from appliance.services.catalog.search import SearchIndex
from appliance.services.contracts import ContractService
from appliance.services.contracts.demands import DemandService
from appliance.services.delivery.peers import PeerService
from appliance.services.delivery.service import TransferService
from appliance.services.evidence import EvidenceLog, append_entry
from appliance.services.evidence_audit import AuditReport, audit_log
from appliance.services.evidence_bundle import write_bundle
from appliance.services.identity import IdentityService, KeyRing
from appliance.services.membership import MembershipService, RevocationRegistry
from appliance.services.store_health import StoreHealth
from appliance.services.sync import SyncService, SyncTimers
from appliance.services.sync.drops import load_counters, save_counters
from appliance.storage import KdfParams, Store
from appliance.storage.vault import Vault

log = logging.getLogger(__name__)

KDF_PROFILES = {
    "moderate": KdfParams.default,
    "interactive": lambda: KdfParams(opslimit=2, memlimit=64 * 1024 * 1024),
    "minimum": KdfParams.fast,
}


@dataclass(frozen=True)
class NodeStatus:
    did: str
    name: str
    org: str
    created: str
    key_seq: int
    key_did: str
    home: str
    schema_version: int
    evidence_entries: int
    checkpoint_size: int | None
    checkpoint_time: str | None
    store_damage: tuple[str, ...] = ()  # what the check of every page found ([] = sound)


class Node:
    """A dsnode node: identity, evidence and (as features arrive) catalog, contracts, sync."""

    def __init__(self, home: Path, store: Store, *, clock: Clock | None = None, bus: EventBus | None = None,
                 sync_timers: SyncTimers | None = None) -> None:
        self.home = Path(home)
        self.store = store
        self._closed = False
        self.clock = clock or SystemClock()
        self.bus = bus or EventBus()
        self.keyring = KeyRing(store.db)
        self.evidence = EvidenceLog(store.db, self.keyring, self.clock)
        self.identity = IdentityService(store.db, self.keyring, self.evidence, self.clock, self.bus)
        self.vault = Vault(store.db, store.vault_dir, store.subkey("vault"))
        self.vault.clean_orphans()  # files of vault writes that a crash interrupted
        self.resources = ResourceService(store.db, self.evidence, self.clock, self.bus, self.vault, store.subkey)
        self.products = ProductService(store.db, self.evidence, self.clock, self.bus, node_did=self.keyring.node_did)
        self.search = SearchIndex(store.db)
        self.sync = SyncService(store.db, self.keyring, self.evidence, self.clock, self.bus, timers=sync_timers)
        self.sync.counters.restore(store.db.read(load_counters))  # the figures of the last run go on
        revocations = self.revocations = RevocationRegistry()
        self.membership = MembershipService(store.db, self.keyring, self.identity, self.evidence, self.clock, self.bus,
                                            self.sync, revocations)
        self.operator = OperatorService(OperatorContext(store.db, self.evidence, self.keyring, self.clock, self.bus,
                                                        self.sync, self.home), revocations)
        self.membership.attach(self.sync)
        self.membership.connect_products(self.products)
        self.operator.attach(self.sync)
        self.contracts = ContractService(store.db, self.keyring, self.evidence, self.clock, self.bus, self.sync,
                                         self.membership)
        self.demands = DemandService(store.db, self.evidence, self.clock, self.sync, self.contracts)
        self.transfers = TransferService(store.db, self.keyring, self.evidence, self.clock, self.bus, self.sync,
                                         self.contracts, self.products, self.resources, self.vault, store.subkey,
                                         self.home)
        self.peers = PeerService(store.db, self.keyring, self.clock, self.sync, revocations, self.transfers,
                                 self.identity)
        self.transfers.peers = self.peers
        self.health = StoreHealth(store.db, self.bus)

    # --- lifecycle ----------------------------------------------------------------------------

    @classmethod
    def init(cls, home: Path, passphrase: bytes, *, name: str, org: str = "", kdf: KdfParams | None = None,
             clock: Clock | None = None, bus: EventBus | None = None, sync_timers: SyncTimers | None = None) -> Node:
        """Create a store and a new identity at ``home``; the first evidence entry records it."""
        clock = clock or SystemClock()
        store = Store.create(Path(home), passphrase, kdf=kdf or KdfParams.default())
        try:
            ts = rfc3339(clock.now())

            def create(conn) -> None:
                key = KeyRing.create(conn, name=name, org=org, ts=ts)
                append_entry(conn, ts=ts, actor=key.did, action=Action.NODE_CREATED, subject=key.did,
                             payload={"name": name, "org": org})

            store.db.write(create)
        except BaseException:
            store.close()
            shutil.rmtree(home, ignore_errors=True)
            raise
        log.info("created a new node store")
        return cls(home, store, clock=clock, bus=bus, sync_timers=sync_timers)

    @classmethod
    def open(cls, home: Path, passphrase: bytes, *, clock: Clock | None = None, bus: EventBus | None = None,
             sync_timers: SyncTimers | None = None) -> Node:
        store = Store.open(Path(home), passphrase)
        try:
            return cls(home, store, clock=clock, bus=bus, sync_timers=sync_timers)
        except BaseException:
            store.close()
            raise

    @staticmethod
    def exists(home: Path) -> bool:
        return Store.exists(Path(home))

    def start(self) -> None:
        """Start background work: space sync (connects to every space this node is in)."""
        self.sync.start()
        self.operator.start()
        self.contracts.start()
        self.transfers.start()
        self.health.start()

    def stop(self) -> None:
        """Stop background work: says goodbye in each space and joins the sync threads."""
        self.health.stop()
        self.peers.stop()
        self.transfers.stop()
        self.contracts.stop()
        self.operator.stop()
        self.sync.stop()

    def close(self) -> None:
        """Stop background work, sign a final checkpoint of the evidence log, close the store (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        except Exception:  # closing must go on; the store is what matters now
            log.exception("stopping background work failed")
        try:
            self.save_counters()
        except ApplianceError as e:
            log.warning("could not keep the counters: %s", e.message("en"))
        try:
            self.evidence.checkpoint()
        except ApplianceError as e:
            log.warning("could not sign a checkpoint on close: %s", e.message("en"))
        finally:
            self.store.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def save_counters(self) -> None:
        """Keep the sync counters in the store (a running node does so every few seconds)."""
        rows, ts = self.sync.counters.rows(), rfc3339(self.clock.now())
        if rows:
            self.store.db.write(lambda c: save_counters(c, rows, ts), durable=False)

    # --- what the adapters show ---------------------------------------------------------------

    def status(self, *, check_store: bool = False) -> NodeStatus:
        """The node at a glance; ``check_store`` also reads every page of the store file (its
        cost grows with the store: the CLI's `status` asks for it, a dashboard that refreshes
        relies on the running node's own check, :attr:`health`)."""
        latest = self.evidence.latest_checkpoint()
        current = self.identity.key_records()[-1]
        return NodeStatus(
            did=self.identity.did, name=self.identity.name, org=self.identity.org,
            created=self.keyring.created, key_seq=current.seq, key_did=current.did, home=str(self.home),
            schema_version=self.store.db.schema_version, evidence_entries=self.evidence.size(),
            checkpoint_size=latest.size if latest else None, checkpoint_time=latest.created if latest else None,
            store_damage=tuple(self.store.db.integrity_problems()) if check_store else (),
        )

    # --- store maintenance --------------------------------------------------------------------

    def change_passphrase(self, old: bytes, new: bytes) -> None:
        """Re-encrypt the store under a new passphrase; evidence records that it happened."""
        self.store.change_passphrase(new)
        try:
            self.evidence.record(Action.PASSPHRASE_CHANGED, self.identity.did)
        except EvidenceWriteFailed:
            self.store.change_passphrase(old)
            raise

    def backup(self, dest: Path):
        info = self.store.backup(Path(dest))
        try:
            self.evidence.record(Action.BACKUP_CREATED, self.identity.did,
                                 {"file": Path(dest).name, "sha256": _file_sha256(Path(dest))})
        except EvidenceWriteFailed:
            Path(dest).unlink(missing_ok=True)
            raise
        return info

    @classmethod
    def restore(cls, backup: Path, home: Path, passphrase: bytes, *, replace: bool = False,
                clock: Clock | None = None, bus: EventBus | None = None) -> Node:
        digest = _file_sha256(Path(backup))
        store = Store.restore(Path(backup), Path(home), passphrase, replace=replace)
        node = cls(home, store, clock=clock, bus=bus)
        node.evidence.record(Action.STORE_RESTORED, node.identity.did, {"file": Path(backup).name, "sha256": digest})
        return node

    # --- evidence -----------------------------------------------------------------------------

    def verify_evidence(self, extra_notes: Sequence[str] = ()) -> AuditReport:
        """Check the store file page by page, then every evidence entry, hash and checkpoint.

        A damaged file raises StoreCorrupt (restore a backup): that is not tampering, and the
        entries cannot be judged on pages that do not read back."""
        damage = self.store.db.integrity_problems()
        if damage:
            raise StoreCorrupt(self.store.db.path, store_reason("damaged_pages", "; ".join(damage[:3])))
        witnessed = self.membership.witnessed_notes()  # checkpoints a space operator co-signed
        return audit_log(self.store.db, self.identity.did, self.identity.key_records(), [*extra_notes, *witnessed])

    def export_evidence(self, path: Path, *, subject: str | None = None) -> int:
        return write_bundle(Path(path), self.evidence, self.identity, subject=subject)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
