"""TransferService (``node.transfers``): delivering a product's data under a finalized agreement.

The Dataspace Protocol transfer process (domain/transfer.py) runs over the same sealed inbox
messages as negotiation: the consumer sends a TransferRequestMessage naming the agreement; the
provider checks the agreement (finalized, not retired, not expired, and its terms permit delivery:
a compute-only offer does not), prepares the payload (the product's resource, masked by the
resource's rules with this agreement's pseudonym key), keeps it in its vault (a file delivered as
it is stays where it is: its hosted copy, or its referenced source), signs a manifest of
per-chunk and whole-object SHA-256 and answers with a TransferStartMessage carrying the manifest
and the address of its data channel. Each step is one write transaction: state, timeline, evidence
and the outgoing message together (a crash takes all of it back or none).

The data itself does not go through the store's transactions:
- direct: the consumer opens an authenticated, encrypted channel to the provider
  (net/channel.py; both node keys proven, no trust in addresses) and asks for the chunks it lacks;
- relay, when no direct route exists (or ``path="relay"``): the chunks travel through the space's
  broker, a window of them at a time, as binary frames sealed under a key of the transfer
  (lane.py; sealed inbox messages with a peer of an earlier version).
Either way the consumer checks each chunk against the manifest, keeps it encrypted in a staging
folder and records it, so an interrupted transfer (network cut, either process killed, broker
restart) goes on from the chunks it has. Chunks that come in order also go into the vault as they
arrive; once all are there the objects are closed (or go from staging into the vault), their
whole hashes are checked, and the consumer signs a receipt that travels in its
TransferCompletionMessage. The provider checks the receipt, keeps it, and files it with the space
operator (the delivery record).

The received data is a vault object listed in ``received_data``: encrypted at rest, opened only
through the node (:meth:`TransferService.open_received`), where usage control will decide later.

Push: the provider may deliver to the consumer instead (``push``, or a consumer's request of
format ``dsnode+push``): the provider connects to the consumer's channel (push.py) and the consumer
asks for its chunks over that connection; everything else is the same.

Beside this module: ``records.py`` (what a transfer is, as rows and events), ``payload.py`` (the
payload, its objects and chunks, and what the agreed terms allow), ``staging.py`` (incoming chunks,
sealed), ``consumer.py`` (the consumer's fetching, relay and finishing), ``push.py`` (the provider's
side of a push).
"""

from __future__ import annotations

import builtins
import json
import logging
import queue
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


from appliance.clock import Clock, rfc3339
from appliance.domain.transfer import FINAL, Event, Role, State, moves, step
from appliance.errors import ApplianceError, DeliveryError, LocalText, ManifestInvalid, TransferNotFound
from appliance.events import EventBus
from appliance.net import channel as ch
from appliance.services.delivery import manifest as mf
from appliance.services.delivery import messages as msgs
from appliance.services.delivery import push as pushing
from appliance.services.delivery.consumer import RELAY_ASK, RELAY_PART, RELAY_WINDOW, Receiver
from appliance.services.delivery.lane import Lane
from appliance.services.delivery.payload import (ChunkReaders, Part, PartsChunker, b64, chunk_hashes, chunk_size,
                                                 SOURCE, SourceReaders, expires, hosted_payload, payload,
                                                 permits_delivery, referenced_payload)
from appliance.services.delivery.rate import ProgressMeter
from appliance.services.delivery.records import (COLS, RECEIVED_COLS, Actions, ReceivedData, Transfer,
                                                 TransferChanged, TransferStep, shown_reason, stored_reason,
                                                 transfer_row)
from appliance.services.delivery.staging import Staging

log = logging.getLogger(__name__)

RELAY_CHUNK = "dsnode.transfer.chunk"
DELIVERY_RECORD = "dsnode.delivery.record"


class TransferService:
    def __init__(self, db, keyring, evidence, clock: Clock, bus: EventBus, sync, contracts, products, resources,
                 vault, subkey: Callable[[str], bytes], home: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.db, self._keyring, self._evidence, self.clock, self.bus = db, keyring, evidence, clock, bus
        self.sync, self.contracts, self.products = sync, contracts, products
        self.resources, self.vault = resources, vault
        self.did: str = keyring.node_did
        self.host, self.port = host, port
        self._staging = Staging(Path(home) / "incoming", subkey("incoming"), vault)
        self._server: ch.ChannelServer | None = None
        self._jobs: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._fetches: dict[str, threading.Thread] = {}
        self._readers = ChunkReaders(vault)
        self._sources = SourceReaders(resources)  # payloads sent from their referenced source
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.relay_only = False  # tests and sites without a direct route: never try the channel
        self.peers: Any = None  # the PeerService (peers.py), which answers a peer's hello with our credentials
        self.receiver = Receiver(self, self._staging)
        self.lane = Lane(self, self._staging)  # relayed chunks as binary frames (lane.py)
        self.pusher = pushing.Pusher(self)
        self._meter = ProgressMeter()  # the rate and time left each progress event carries
        for wire_type in msgs.TYPES:
            sync.on(wire_type, self._on_message)
        sync.on(RELAY_CHUNK, self.receiver.on_chunk)
        sync.on(RELAY_ASK, self._on_relay_ask)
        sync.on_lane(self.lane.frame)
        sync.on(pushing.OFFER, self._on_offer)
        sync.on(pushing.USE_RELAY, self.pusher.on_use_relay)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        if self._server is None and not self.relay_only:
            self._server = ch.ChannelServer(self._keyring.signing_key(), self._serve, host=self.host, port=self.port)
            self._server.start()
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="dsnode-delivery", daemon=True)
            self._worker.start()
        self.lane.start()
        self._jobs.put(("resume_all", None))

    def stop(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._jobs.put(("stop", None))
            self._worker.join(timeout=30)
            self._worker = None
        self.lane.stop()
        self.pusher.close_all()
        with self._lock:
            fetches = list(self._fetches.values())
        for t in fetches:
            t.join(timeout=30)
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._readers.close()
        self._sources.close()

    @property
    def channel_port(self) -> int | None:
        return self._server.port if self._server is not None else None

    # --- reading --------------------------------------------------------------------------------

    def list(self) -> builtins.list[Transfer]:
        return self.db.read(lambda c: [transfer_row(r) for r in c.execute(
            f"SELECT {COLS} FROM transfer ORDER BY created, id")])

    def get(self, transfer_id: str) -> Transfer:
        return self.db.read(lambda c: self._get(c, transfer_id))

    def _get(self, conn, transfer_id: str) -> Transfer:
        r = conn.execute(f"SELECT {COLS} FROM transfer WHERE id = ?", (transfer_id,)).fetchone()
        if r is None:
            r = conn.execute(f"SELECT {COLS} FROM transfer WHERE id LIKE ? || '%'", (transfer_id,)).fetchall()
            if len(r) != 1:
                raise TransferNotFound(transfer_id)
            r = r[0]
        return transfer_row(r)

    def timeline(self, transfer_id: str) -> builtins.list[TransferStep]:
        t = self.get(transfer_id)
        sql = ("SELECT ts, event, direction, state_before, state_after, reason FROM transfer_step "
               "WHERE transfer_id = ? ORDER BY id")
        return self.db.read(lambda c: [TransferStep(r[0], r[1], r[2], r[3], r[4], shown_reason(r[5]))
                                       for r in c.execute(sql, (t.id,))])

    def manifest(self, transfer_id: str) -> tuple[dict, dict] | None:
        t = self.get(transfer_id)
        row = self.db.read(lambda c: c.execute("SELECT manifest, manifest_sig FROM transfer WHERE id = ?",
                                               (t.id,)).fetchone())
        return (json.loads(row[0]), json.loads(row[1])) if row and row[0] else None

    def receipt(self, transfer_id: str) -> tuple[dict, dict] | None:
        t = self.get(transfer_id)
        row = self.db.read(lambda c: c.execute("SELECT receipt, receipt_sig FROM transfer WHERE id = ?",
                                               (t.id,)).fetchone())
        return (json.loads(row[0]), json.loads(row[1])) if row and row[0] else None

    def received(self) -> builtins.list[ReceivedData]:
        return self.db.read(lambda c: [ReceivedData(*r) for r in c.execute(
            f"SELECT {RECEIVED_COLS} FROM received_data WHERE deleted IS NULL ORDER BY received, transfer_id, part")])

    def open_received(self, object_id: str) -> Iterator[bytes]:
        """The bytes of received data, decrypted as they are read: the only way to them."""
        if not any(r.object_id == object_id for r in self.received()):
            raise TransferNotFound(object_id)
        return self.vault.open(object_id)

    # --- the consumer's commands ----------------------------------------------------------------

    def request(self, negotiation_id: str, *, path: str = "auto") -> str:
        """Consumer: ask for the data of a finalized agreement. Returns the transfer id. ``path``:
        ``auto`` (pull, direct, the relay when there is no route), ``relay``, or ``push`` (the
        provider connects to this node's data channel)."""
        n, saved = self._own_agreement(negotiation_id, Role.CONSUMER)
        return self.db.write(lambda conn: self._request(conn, n, saved["agreement"]["@id"], path))

    def _own_agreement(self, negotiation_id: str, role: Role) -> tuple:
        """The negotiation and its saved agreement, when this node is ``role`` in it and the agreement
        permits a delivery now; a DeliveryError with the reason otherwise."""
        n = self.contracts.get(negotiation_id)
        saved = self.contracts.agreement(n.id)
        if n.role != role.value:
            key = "delivery.reason.not_consumer" if role == Role.CONSUMER else "delivery.reason.not_provider"
            raise DeliveryError(LocalText(key, n.id))
        self._check_agreement(n, saved)
        assert saved is not None  # checked
        return n, saved

    def _request(self, conn, n, agreement_id: str, path: str, offer: str | None = None) -> str:
        pid = "urn:uuid:" + secrets.token_hex(16)
        port = self.channel_port if path == "push" and not self.relay_only else None
        address = msgs.direct_address(self.host, port, pid) if port is not None else None  # a push comes here
        fmt = msgs.PUSH if address else msgs.RELAY if path == "relay" or self.relay_only else msgs.DIRECT
        where = f"direct:{self.host}:{port}" if address else "relay" if fmt == msgs.RELAY else "direct"
        now = self._now()
        conn.execute(
            "INSERT INTO transfer (id, role, space_id, peer, negotiation_id, agreement_id, dataset_id, state, "
            "path, mode, created, updated) VALUES (?, 'consumer', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (pid, n.space_id, n.peer, n.id, agreement_id, n.dataset_id, State.INITIAL.value, where,
             "push" if address or offer else "pull", now, now))
        body = msgs.request(pid, agreement_id, format=fmt, callback=f"mqtt:inbox/{self.did}", data_address=address,
                            offer=offer)
        self._move(conn, pid, Event.REQUEST, Role.CONSUMER, "sent", body=body)
        return pid

    def push(self, negotiation_id: str) -> str:
        """Provider: deliver the data of a finalized agreement to the consumer (push). The consumer's
        node is asked to request it (DSP: the consumer requests); the provider then connects to the
        consumer's data channel. Returns this side's transfer id."""
        n, saved = self._own_agreement(negotiation_id, Role.PROVIDER)
        pid = "urn:uuid:" + secrets.token_hex(16)

        def write(conn) -> str:
            now = self._now()
            conn.execute(
                "INSERT INTO transfer (id, role, space_id, peer, negotiation_id, agreement_id, dataset_id, state, "
                "path, mode, created, updated) VALUES (?, 'provider', ?, ?, ?, ?, ?, ?, 'direct', 'push', ?, ?)",
                (pid, n.space_id, n.peer, n.id, saved["agreement"]["@id"], n.dataset_id, State.INITIAL.value, now,
                 now))
            conn.execute("INSERT INTO transfer_step (transfer_id, ts, event, direction, state_before, state_after) "
                         "VALUES (?, ?, ?, 'sent', ?, ?)", (pid, now, pushing.OFFER, State.INITIAL.value,
                                                            State.INITIAL.value))
            self.sync.send(conn, n.space_id, to=n.peer, type=pushing.OFFER,
                           body=pushing.offer_body(saved["agreement"]["@id"], pid))
            return pid

        return self.db.write(write)

    def pause(self, transfer_id: str) -> None:
        self._say(transfer_id, Event.SUSPEND, "paused", LocalText("delivery.reason.paused"))

    def resume(self, transfer_id: str) -> None:
        """Ask the provider to go on (consumer), or go on (provider) with a suspended transfer."""
        t = self.get(transfer_id)
        if t.state != State.SUSPENDED.value:
            raise DeliveryError(LocalText("delivery.reason.not_suspended", t.id, t.state))

        def write(conn) -> None:
            assert t.peer_pid is not None  # a suspended transfer had both pids
            if t.role == Role.CONSUMER.value:
                self._move(conn, t.id, Event.RESUME, Role.CONSUMER, "sent",
                           body=msgs.start(t.id, t.peer_pid))
            else:
                self._start(conn, self._get(conn, t.id))

        self.db.write(write)

    def cancel(self, transfer_id: str, reason: str = "") -> None:
        self._say(transfer_id, Event.TERMINATE, "cancelled", reason or LocalText("delivery.reason.cancelled"))

    def _say(self, transfer_id: str, event: Event, code: str, reason) -> None:
        t = self.get(transfer_id)
        role = Role(t.role)
        if event is Event.TERMINATE and t.state == State.INITIAL.value and t.mode == "push" and not t.peer_pid:
            # a push offered and not answered yet: withdrawn here; a late answer is refused (_on_request)
            self.db.write(lambda conn: self._move(conn, t.id, event, role, "local", reason=reason))
            return
        if event not in moves(State(t.state), role) or not t.peer_pid:
            raise DeliveryError(LocalText("delivery.reason.cannot_now", t.id, t.state))

        def write(conn) -> None:
            assert t.peer_pid is not None
            consumer_pid, provider_pid = (t.id, t.peer_pid) if role is Role.CONSUMER else (t.peer_pid, t.id)
            build = msgs.suspension if event is Event.SUSPEND else msgs.termination
            self._move(conn, t.id, event, role, "sent", body=build(consumer_pid, provider_pid, code, reason),
                       reason=reason)

        self.db.write(write)

    # --- state changes --------------------------------------------------------------------------

    def _now(self) -> str:
        return rfc3339(self.clock.now())

    def _move(self, conn, transfer_id: str, event: Event, sender: Role | None, direction: str, *,
              body: dict | None = None, reason: str | LocalText | None = None) -> State:
        english = reason.message("en") if isinstance(reason, LocalText) else reason
        reason = stored_reason(reason)
        t = self._get(conn, transfer_id)
        before = State(t.state)
        after, _ = step(before, event, sender)
        now = self._now()
        conn.execute("UPDATE transfer SET state = ?, updated = ?, reason = COALESCE(?, reason) WHERE id = ?",
                     (after.value, now, reason if after is State.TERMINATED else None, t.id))
        conn.execute("INSERT INTO transfer_step (transfer_id, ts, event, direction, state_before, state_after, reason)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)", (t.id, now, event.value, direction, before.value, after.value,
                                                      reason))
        action = {State.REQUESTED: Actions.REQUESTED, State.STARTED: Actions.STARTED,
                  State.SUSPENDED: Actions.SUSPENDED, State.COMPLETED: Actions.COMPLETED,
                  State.TERMINATED: Actions.TERMINATED}.get(after)
        if action and after is not before:
            self._evidence.append(conn, action=action, subject=t.id,
                                  payload={"role": t.role, "peer": t.peer, "agreement": t.agreement_id,
                                           "negotiation": t.negotiation_id, "reason": english or ""})
        if body is not None:
            self.sync.send(conn, t.space_id, to=t.peer, type=msgs.wire_type(body), body=body)
        if after is State.TERMINATED and t.role == Role.CONSUMER.value:  # nothing half-received is kept
            self.db.after_commit(lambda: self._staging.remove(t.id))
        changed = TransferChanged(t.id, t.role, after.value, t.path)
        self.db.after_commit(lambda: self.bus.emit(changed))
        return after

    def _refuse(self, conn, space_id: str, peer: str, consumer_pid: str, provider_pid: str | None,
                reason: LocalText) -> None:
        """Tell the peer why (a termination it can match), and keep evidence of the refusal."""
        self._evidence.append(conn, action=Actions.REFUSED, subject=consumer_pid,
                              payload={"peer": peer, "reason": reason.message("en")})
        if provider_pid:
            body = msgs.termination(consumer_pid, provider_pid, "refused", reason)
            self.sync.send(conn, space_id, to=peer, type=msgs.wire_type(body), body=body)

    # --- received messages (inside the sync inbox transaction) ----------------------------------

    def _on_message(self, conn, msg) -> None:
        body = msg.body
        sender = msg.sender
        if not isinstance(body, dict) or not isinstance(sender, str):
            log.warning("transfer message from %s refused: not a JSON object", sender)
            return
        try:
            role_of_sender = Role.CONSUMER if body.get("@type") == "TransferRequestMessage" else None
            if body.get("@type") == "TransferStartMessage":
                mine = self._mine(conn, sender, body)
                role_of_sender = Role.CONSUMER if mine is not None and mine.role == "provider" else Role.PROVIDER
            event, fields = msgs.parse(body, role_of_sender)
        except DeliveryError as e:
            log.warning("transfer message from %s refused: %s", sender, e.message("en"))
            return
        if event is Event.REQUEST:
            self._on_request(conn, msg, fields)
            return
        t = self._mine(conn, sender, body)
        if t is None:
            log.warning("transfer message %s from %s for no transfer here", event.value, sender)
            return
        if t.peer_pid is None and t.role == Role.CONSUMER.value and fields.get("provider_pid"):
            conn.execute("UPDATE transfer SET peer_pid = ? WHERE id = ?", (fields["provider_pid"], t.id))
        sender_role = Role.CONSUMER if t.role == Role.PROVIDER.value else Role.PROVIDER
        try:
            if event is Event.START:
                self._on_start(conn, t, fields)
            elif event is Event.RESUME:
                self._move(conn, t.id, Event.RESUME, sender_role, "received")
                self._start(conn, self._get(conn, t.id))
            elif event is Event.COMPLETE:
                self._on_complete(conn, t, fields)
            else:
                self._move(conn, t.id, event, sender_role, "received", reason=fields.get("reason") or "")
        except (DeliveryError, ApplianceError) as e:
            log.warning("transfer %s: %s refused: %s", t.id, event.value, e.message("en"))
            conn.execute("INSERT INTO transfer_step (transfer_id, ts, event, direction, state_before, state_after, "
                         "reason) VALUES (?, ?, ?, 'refused', ?, ?, ?)",
                         (t.id, self._now(), event.value, t.state, t.state, e.message("en")))

    def _mine(self, conn, sender: str, body: dict) -> Transfer | None:
        """This node's transfer a message is about: its consumerPid or providerPid is ours, with that peer."""
        for pid in (body.get("consumerPid"), body.get("providerPid")):
            if isinstance(pid, str):
                r = conn.execute(f"SELECT {COLS} FROM transfer WHERE id = ? AND peer = ?", (pid, sender)).fetchone()
                if r is not None:
                    return transfer_row(r)
        return None

    def _check_agreement(self, n, saved: dict | None) -> None:
        if n.state != "FINALIZED" or saved is None:
            raise DeliveryError(LocalText("delivery.reason.not_finalized", n.id, n.state))
        if saved["status"] != "active":
            raise DeliveryError(LocalText("delivery.reason.retired", n.id))
        agreement = saved["agreement"]
        if not permits_delivery(agreement):
            raise DeliveryError(LocalText("delivery.reason.compute_only", n.id))
        ends = expires(agreement)
        if ends is not None and ends <= self._now():
            raise DeliveryError(LocalText("delivery.reason.expired", n.id, ends))

    def _on_request(self, conn, msg, fields: dict) -> None:
        consumer_pid = fields["consumer_pid"]
        known = "SELECT 1 FROM transfer WHERE peer = ? AND peer_pid = ?"
        if conn.execute(known, (msg.sender, consumer_pid)).fetchone():
            return  # a resent request: already answered
        row = conn.execute("SELECT negotiation_id FROM contract_agreement WHERE id = ?",
                           (fields["agreement_id"],)).fetchone()
        offered = self._offered(conn, msg.sender, fields)
        pid = offered.id if offered is not None else "urn:uuid:" + secrets.token_hex(16)
        n = self.contracts.get(row[0]) if row else None
        try:
            if n is None or n.role != Role.PROVIDER.value:
                raise DeliveryError(LocalText("delivery.reason.no_agreement", fields["agreement_id"]))
            if n.peer != msg.sender:
                raise DeliveryError(LocalText("delivery.reason.other_party", fields["agreement_id"]))
            if offered is not None and offered.state != State.INITIAL.value:
                raise DeliveryError(LocalText("delivery.reason.offer_withdrawn", offered.id))
            self._check_agreement(n, self.contracts.agreement(n.id))
            where = self._provider_path(fields)
        except DeliveryError as e:
            reason = e.args[0] if e.args and isinstance(e.args[0], LocalText) else LocalText(
                "delivery.reason.no_agreement", fields["agreement_id"])
            self._refuse(conn, msg.space_id, msg.sender, consumer_pid, pid, reason)
            if offered is not None and offered.state == State.INITIAL.value:
                conn.execute("UPDATE transfer SET peer_pid = ? WHERE id = ?", (consumer_pid, pid))
                self._move(conn, pid, Event.TERMINATE, Role.PROVIDER, "local", reason=reason)
            return
        mode = "push" if fields["format"] == msgs.PUSH or offered is not None else "pull"
        if offered is None:
            now = self._now()
            conn.execute(
                "INSERT INTO transfer (id, peer_pid, role, space_id, peer, negotiation_id, agreement_id, dataset_id, "
                "state, path, mode, created, updated) VALUES (?, ?, 'provider', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pid, consumer_pid, n.space_id, msg.sender, n.id, fields["agreement_id"], n.dataset_id,
                 State.INITIAL.value, where, mode, now, now))
        else:
            conn.execute("UPDATE transfer SET peer_pid = ?, path = ?, mode = ? WHERE id = ?",
                         (consumer_pid, where, mode, pid))
        self._move(conn, pid, Event.REQUEST, Role.CONSUMER, "received")
        self.db.after_commit(lambda: self._jobs.put(("prepare", pid)))

    def _offered(self, conn, sender: str, fields: dict) -> Transfer | None:
        """The push this node offered that a request answers (its ``dsnode:offer``), if any."""
        if not fields.get("offer"):
            return None
        sql = (f"SELECT {COLS} FROM transfer WHERE id = ? AND peer = ? AND role = 'provider' AND mode = 'push' "
               "AND peer_pid IS NULL AND agreement_id = ?")
        r = conn.execute(sql, (fields["offer"], sender, fields["agreement_id"])).fetchone()
        return transfer_row(r) if r else None

    def _provider_path(self, fields: dict) -> str:
        """How a request wants its bytes: ``relay``, ``direct`` (a pull) or ``direct:HOST:PORT`` (a push
        to the consumer's channel there). DeliveryError for a push without a direct address."""
        if fields["format"] == msgs.RELAY or self.relay_only:
            return "relay"
        if fields["format"] != msgs.PUSH:
            return "direct"
        host, port, _ = msgs.direct_endpoint(fields.get("data_address"))
        return f"direct:{host}:{port}"

    def _on_offer(self, conn, msg) -> None:
        """Consumer: the provider offers to push the data of an agreement: request the push (after the
        same checks as a request of ours), or tell it why not."""
        body = msg.body if isinstance(msg.body, dict) else {}
        agreement_id, provider_pid = body.get("agreementId"), body.get("providerPid")
        if not isinstance(agreement_id, str) or not isinstance(provider_pid, str):
            log.warning("push offer from %s refused: not readable", msg.sender)
            return
        known = "SELECT 1 FROM transfer WHERE peer = ? AND peer_pid = ?"
        if conn.execute(known, (msg.sender, provider_pid)).fetchone():
            return  # a resent offer: already answered
        row = conn.execute("SELECT negotiation_id FROM contract_agreement WHERE id = ?", (agreement_id,)).fetchone()
        n = self.contracts.get(row[0]) if row else None
        try:
            if n is None or n.role != Role.CONSUMER.value or n.peer != msg.sender:
                raise DeliveryError(LocalText("delivery.reason.no_agreement", agreement_id))
            self._check_agreement(n, self.contracts.agreement(n.id))
        except DeliveryError as e:
            reason = e.args[0] if e.args and isinstance(e.args[0], LocalText) else LocalText(
                "delivery.reason.no_agreement", agreement_id)
            self._refuse(conn, msg.space_id, msg.sender, "urn:uuid:" + secrets.token_hex(16), provider_pid, reason)
            return
        self._request(conn, n, agreement_id, "push", offer=provider_pid)

    def _on_start(self, conn, t: Transfer, fields: dict) -> None:
        signed = fields.get("manifest")
        if signed is None:
            raise ManifestInvalid(t.id, LocalText("delivery.reason.no_manifest"))
        mf.verify_manifest(signed["manifest"], signed["signature"], self._peer_key(t.peer, signed["signature"]))
        m = signed["manifest"]
        if m["agreementId"] != t.agreement_id:
            raise ManifestInvalid(t.id, LocalText("delivery.reason.other_agreement"))
        if not str(m["version"]).isdigit():
            raise ManifestInvalid(t.id, LocalText("delivery.reason.manifest_malformed", "version"))
        address = fields.get("data_address")
        conn.execute("UPDATE transfer SET manifest = ?, manifest_sig = ?, resource_id = ?, version = ?, "
                     "path = COALESCE(?, path) WHERE id = ?",
                     (json.dumps(m), json.dumps(signed["signature"]), m["resource"], int(m["version"]),
                      None if address is not None or t.mode == "push" else "relay", t.id))
        if address is not None and t.mode != "push":
            host, port, _ = msgs.direct_endpoint(address)
            conn.execute("UPDATE transfer SET path = ? WHERE id = ?", (f"direct:{host}:{port}", t.id))
        self._move(conn, t.id, Event.START, Role.PROVIDER, "received")
        self.db.after_commit(lambda: self._jobs.put(("fetch", t.id)))

    def _on_complete(self, conn, t: Transfer, fields: dict) -> None:
        if t.role != Role.PROVIDER.value:  # the provider ended it: nothing more will come
            self._move(conn, t.id, Event.COMPLETE, Role.PROVIDER, "received")
            return
        signed = fields.get("receipt")
        m, sig = self._manifest(conn, t.id)
        if signed is None:
            raise DeliveryError(LocalText("delivery.reason.no_receipt"))
        mf.verify_receipt(signed["receipt"], signed["signature"], self._peer_key(t.peer, signed["signature"]), m)
        conn.execute("UPDATE transfer SET receipt = ?, receipt_sig = ?, chunks_done = ?, bytes_done = ? WHERE id = ?",
                     (json.dumps(signed["receipt"]), json.dumps(signed["signature"]), mf.chunk_total(m), m["size"],
                      t.id))
        self._move(conn, t.id, Event.COMPLETE, Role.CONSUMER, "received")
        self._file_receipt(conn, t, signed)

    def _file_receipt(self, conn, t: Transfer, signed: dict) -> None:
        """The delivery record at the space operator: the consumer's signed receipt."""
        space = self.sync.space(t.space_id)
        self._evidence.append(conn, action=Actions.RECEIPT, subject=t.id,
                              payload={"operator": space.operator_did, "receipt_sha256": mf.manifest_hash(
                                  signed["receipt"])})
        if space.operator_did != self.did:
            m, msig = self._manifest(conn, t.id)
            self.sync.send(conn, t.space_id, to=space.operator_did, type=DELIVERY_RECORD,
                           body={"transfer": t.id, "consumer": t.peer, "agreement": t.agreement_id,
                                 "manifest": m, "manifest_signature": msig,
                                 "receipt": signed["receipt"], "signature": signed["signature"]})

    def _peer_key(self, peer: str, signature: object) -> str:
        """The did that signed: the peer's node did or its current key (after a rotation)."""
        method = signature.get("verificationMethod") if isinstance(signature, dict) else None
        return method if method in (peer, self.sync.keys.current(peer)) else peer

    def _transfers_of(self, key_did: str) -> builtins.list[Transfer]:
        return [t for t in self.list() if t.role == "provider" and key_did in (t.peer, self.sync.keys.current(t.peer))
                and t.state == State.STARTED.value]

    def _manifest(self, conn, transfer_id: str) -> tuple[dict, dict]:
        row = conn.execute("SELECT manifest, manifest_sig FROM transfer WHERE id = ?", (transfer_id,)).fetchone()
        if not row or not row[0]:
            raise DeliveryError(LocalText("delivery.reason.no_manifest_yet", transfer_id))
        return json.loads(row[0]), json.loads(row[1])

    # --- the provider: prepare, start, serve ----------------------------------------------------

    def _prepare(self, transfer_id: str) -> None:
        """Make the payload (masked), keep it in the vault, sign its manifest, start the transfer."""
        t = self.get(transfer_id)
        if t.state != State.REQUESTED.value or t.object_id:
            return
        try:
            product = self.products.get(t.dataset_id)
            pins = product.resources
            if not pins:
                raise DeliveryError(LocalText("delivery.reason.nothing_to_deliver", t.dataset_id))
            object_id, size, objects, total, sha, masked, rules, obj = self._make_payload(t, product)
        except ApplianceError as e:
            reason = e.args[0] if e.args and isinstance(e.args[0], LocalText) else LocalText(
                "delivery.reason.cannot_prepare", e.message("en"))
            self.db.write(lambda conn: self._terminate_here(conn, t.id, reason))
            return
        resource = pins[0].resource_id if len(pins) == 1 else product.id
        version = pins[0].version if len(pins) == 1 else product.version
        m = mf.build_manifest(transfer_id=t.id, agreement_id=t.agreement_id, resource_id=resource, version=version,
                              chunk_size=size, objects=objects, size=total, sha256=sha, masked=masked,
                              created=self._now(), masking_rules=rules)
        sig = mf.sign(self._keyring.signing_key(), m)

        def write(conn) -> None:
            if obj is not None:
                self.vault.record(conn, obj, self._now())
            conn.execute("UPDATE transfer SET object_id = ?, manifest = ?, manifest_sig = ?, resource_id = ?, "
                         "version = ? WHERE id = ?", (object_id, json.dumps(m), json.dumps(sig), resource,
                                                     int(version), t.id))
            self._start(conn, self._get(conn, t.id))

        self.db.write(write)

    def _make_payload(self, t: Transfer, product) -> tuple:
        """The payload's vault object, its chunk size, the manifest's objects, size and SHA-256, whether
        masked, the rules, and the new vault object to record. A hosted file delivered as its bytes is
        sent from its own vault object (None to record): only its chunks are hashed. Any other payload
        is written into a new object as it is made, hashed on a thread beside (payload.PartsChunker;
        each part's check runs as its bytes end), so the vault does not hash it again."""
        source = referenced_payload(self.resources, product, t.agreement_id)
        if source is not None:  # hashed as read, not copied
            size = chunk_size([source[1]], direct=t.path != "relay")
            chunked = PartsChunker([source[1]], size)
            for _ in chunked:
                pass
            return source[0], size, chunked.objects, chunked.size, chunked.sha256, False, [], None
        hosted = hosted_payload(self.resources, product)
        if hosted is not None:
            object_id, name, total, sha = hosted
            size = chunk_size([Part(name, iter(()), False, lambda _: None, total)], direct=t.path != "relay")
            hashes, got = chunk_hashes(self.vault.open(object_id), size)
            if got != total:
                pin = product.resources[0]
                raise DeliveryError(LocalText("delivery.reason.source_changed", pin.resource_id, pin.version))
            return object_id, size, [{"name": name, "size": total, "sha256": sha, "chunks": hashes}], total, sha, \
                False, [], None
        parts, masked, rules = payload(self.resources, product, t.agreement_id)
        size = chunk_size(parts, direct=t.path != "relay")
        chunked = PartsChunker(parts, size)
        obj = self.vault.put(chunked, name="delivery", digest=False)
        return obj.id, size, chunked.objects, chunked.size, chunked.sha256, masked, rules, obj

    def _start(self, conn, t: Transfer) -> None:
        assert t.peer_pid is not None  # the provider's transfer knows the consumer's pid from the request
        m, sig = self._manifest(conn, t.id)
        address = None
        if t.path == "direct" and self._server is not None:
            address = msgs.direct_address(self.host, self._server.port, t.id)
        body = msgs.start(t.peer_pid, t.id, address, manifest=m, signature=sig)
        self._move(conn, t.id, Event.START, Role.PROVIDER, "sent", body=body)
        if t.mode == "push" and t.path and t.path.startswith("direct:"):
            self.db.after_commit(lambda: self._jobs.put(("push", t.id)))
        elif t.mode == "push":  # no direct path here: the consumer fetches through the broker
            self.sync.send(conn, t.space_id, to=t.peer, type=pushing.USE_RELAY, body={"transfer": t.peer_pid})

    def _terminate_here(self, conn, transfer_id: str, reason: LocalText) -> None:
        t = self._get(conn, transfer_id)
        if State(t.state) in FINAL:
            return
        role = Role(t.role)
        body = None
        if t.peer_pid:
            consumer_pid, provider_pid = (t.id, t.peer_pid) if role is Role.CONSUMER else (t.peer_pid, t.id)
            body = msgs.termination(consumer_pid, provider_pid, "failed", reason)
        self._move(conn, t.id, Event.TERMINATE, role, "sent" if body else "local", body=body,
                   reason=reason)

    def _serve(self, channel: ch.Channel) -> None:
        """A peer connected to this node's channel: a discovery hello, a consumer fetching chunks, or
        a provider pushing a transfer of ours."""
        try:
            ask: dict | None = channel.recv_json(timeout=60)
        except ApplianceError:
            return
        if ask is not None and ask.get("type") == "hello":  # a peer checking who this node is (discovery)
            peers = self.peers
            channel.send_json({"type": "hello", "credentials": peers.credentials() if peers else {}})
            ask = None
        if ask is not None and "push" in ask:
            self.receiver.accept_push(channel, ask.get("push"))
            return
        self.serve_fetches(channel, ask)

    def serve_fetches(self, channel: ch.Channel, first: dict | None = None) -> bool:
        """Answer a consumer's {"fetch": transfer id, "chunks": [i, …]} with a DATA frame each, until it
        goes; True when it said it has every chunk ({"have": "all"}, at the end of a push)."""
        ask: dict | None = first
        while not self._stop.is_set():
            if ask is None:
                try:
                    ask = channel.recv_json(timeout=60)
                except ApplianceError:
                    return False
            if ask.get("have") == "all":
                return True
            transfer_id, wanted = ask.get("fetch"), ask.get("chunks")
            ask = None
            mine = {t.id: t for t in self._transfers_of(channel.peer_did)}
            t = mine.get(transfer_id) if isinstance(transfer_id, str) else None
            if t is None or not isinstance(wanted, list) or not all(isinstance(i, int) for i in wanted):
                channel.send_json({"error": "unknown_transfer"})
                return False
            if not self.contracts.in_force(t.negotiation_id):  # retired (or ended) while the data moved
                channel.send_json({"error": "agreement_not_in_force"})
                reason = LocalText("delivery.reason.retired", t.negotiation_id)
                self.db.write(lambda conn, tid=t.id, why=reason: self._terminate_here(conn, tid, why))
                return False
            where = mf.Layout(self.db.read(lambda c, tid=t.id: self._manifest(c, tid))[0])
            for i in wanted:
                if not 0 <= i < where.total:
                    channel.send_json({"error": "bad_chunk"})
                    return False
                try:
                    data = self._chunk(t.object_id, where, i)
                except DeliveryError:  # its source changed: the transfer was ended, the consumer is told why
                    channel.send_json({"error": "source_changed"})
                    return False
                channel.send(ch.FRAME_DATA, i.to_bytes(4, "big") + data)
            channel.send_json({"done": len(wanted)})
        return False

    def _chunk(self, object_id: str | None, where: mf.Layout, index: int) -> bytes:
        """Chunk ``index`` of a prepared payload."""
        if object_id is None:  # a started transfer always has its prepared payload
            raise DeliveryError(LocalText("delivery.reason.no_manifest_yet", "-"))
        if not object_id.startswith(SOURCE):
            return self._readers.read(object_id, where, index)
        try:
            return self._sources.read(object_id, where, index)
        except ApplianceError as e:  # changed since it was hashed (or gone): the transfer ends, with the reason
            reason = e.args[0] if e.args and isinstance(e.args[0], LocalText) else LocalText(
                "delivery.reason.cannot_prepare", e.message("en"))
            ended = [t.id for t in self.list() if t.role == "provider" and t.object_id == object_id]

            def write(conn) -> None:
                for tid in ended:
                    self._terminate_here(conn, tid, reason)

            self.db.write(write)
            raise

    # --- the relay path -------------------------------------------------------------------------

    def _on_relay_ask(self, conn, msg) -> None:
        """The consumer asks for chunks through the broker: {"transfer": provider pid, "chunks": [...]}
        (the first window, then one more for each chunk it received)."""
        body = msg.body if isinstance(msg.body, dict) else {}
        t = self._mine(conn, msg.sender, {"providerPid": body.get("transfer")})
        if t is None or t.role != "provider" or t.state != State.STARTED.value:
            return
        asked = body.get("chunks")
        wanted = [i for i in asked if isinstance(i, int) and not isinstance(i, bool)] if isinstance(asked, list) else []
        conn.execute("UPDATE transfer SET path = 'relay' WHERE id = ?", (t.id,))
        if self.lane.ask(conn, t, wanted, body.get("lane")):  # the consumer offered the lane
            return
        where = mf.Layout(self._manifest(conn, t.id)[0])
        batch = [i for i in wanted[:RELAY_WINDOW] if 0 <= i < where.total]
        for i in batch:  # a chunk larger than one message goes in parts, each with its offset
            data = memoryview(self._chunk(t.object_id, where, i))
            for at in range(0, max(len(data), 1), RELAY_PART):
                body = {"transfer": t.peer_pid, "index": i, "batch": batch, "data": b64(data[at:at + RELAY_PART])}
                if len(data) > RELAY_PART:
                    body["offset"] = at
                self.sync.send(conn, t.space_id, to=t.peer, type=RELAY_CHUNK, body=body)

    def _progress(self, transfer_id: str, done: int, total: int, bytes_done: int, bytes_total: int) -> None:
        self.bus.emit(self._meter.event(transfer_id, done, total, bytes_done, bytes_total))

    # --- the worker -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job, arg = self._jobs.get()
            if job == "stop":
                return
            if self._stop.is_set():
                continue
            try:
                if job == "prepare":
                    self._prepare(arg)
                elif job == "fetch":
                    self._spawn(arg, self.receiver.fetch)
                elif job == "push":
                    self._spawn(arg, self.pusher.push)
                elif job == "finish":
                    self.receiver.finish(arg)
                elif job == "resume_all":
                    self._resume_all()
            except Exception:  # noqa: BLE001 - one transfer's bug must not stop the others; it is logged
                log.exception("delivery job %s failed", job)

    def _spawn(self, transfer_id: str, work: Callable[[str], None]) -> None:
        """One thread per transfer moving its data (a consumer's fetch, a provider's push)."""
        def run() -> None:
            try:
                work(transfer_id)
            finally:
                with self._lock:
                    self._fetches.pop(transfer_id, None)

        with self._lock:
            if transfer_id in self._fetches:
                return
            t = threading.Thread(target=run, name="dsnode-fetch", daemon=True)
            self._fetches[transfer_id] = t
        t.start()

    def _resume_all(self) -> None:
        """After a restart: prepare what was requested, fetch what was started, push what was pushed."""
        for t in self.list():
            if t.role == "provider" and t.state == State.REQUESTED.value:
                self._prepare(t.id)
            elif t.role == "consumer" and t.state == State.STARTED.value:
                self._spawn(t.id, self.receiver.fetch)
            elif t.role == "provider" and t.state == State.STARTED.value and t.mode == "push" and (
                    t.path or "").startswith("direct:"):
                self._spawn(t.id, self.pusher.push)
