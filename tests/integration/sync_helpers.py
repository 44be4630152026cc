"""Helpers for the space-sync tests: nodes in one space on a test broker, and waiting for things."""

from __future__ import annotations

import time
from pathlib import Path

from appliance.clock import FixedClock
from appliance.crypto.keys import SigningKey
from appliance.node import Node
from appliance.services.sync import SpaceConfig, SyncTimers
from appliance.services.sync.codec import sign_stored
from appliance.storage import KdfParams

PASSPHRASE = b"correct horse battery staple"
SPACE = "test-space"

FAST = SyncTimers(keepalive=5, connect_timeout=3.0, backoff_initial=0.05, backoff_max=0.5, resend_after=0.3,
                  confirm_delay=0.2, stop_timeout=2.0, ack_flush=0.02)

OPERATOR = SigningKey.generate()  # the space operator's identity, for spaces whose operator is not a node here


def space_config(broker, node_did: str, *, space_id: str = SPACE, status: str = "member",
                 operator_did: str | None = None) -> SpaceConfig:
    return SpaceConfig(space_id=space_id, name=f"Space {space_id}", operator_did=operator_did or OPERATOR.did,
                       broker_host="127.0.0.1", broker_port=broker.port, tls_ca_pem=None, username=node_did,
                       password="unused", status=status, credential=None)


def make_node(home: Path, name: str, clock: FixedClock, timers: SyncTimers = FAST) -> Node:
    node = Node.init(home, PASSPHRASE, name=name, kdf=KdfParams.fast(), clock=clock, sync_timers=timers)
    node.sync.set_catalog_filter(lambda space_id, provider, dataset_id, entry: True)  # no listing review here
    return node


def join(node: Node, broker, **kw) -> None:
    node.store.db.write(lambda conn: node.sync.add_space(conn, space_config(broker, node.identity.did, **kw)))


def eventually(check, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``check()`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last value {value!r})")
        time.sleep(interval)


def record_pings(node: Node, type: str = "test.ping"):  # noqa: A002
    """Apply ``type`` messages as evidence entries (in the message's transaction); returns a reader
    of the applied bodies' ``n`` values, one per application."""

    def handler(conn, msg) -> None:
        node.evidence.append(conn, action="test.received", subject=msg.envelope["id"], payload=msg.body)

    node.sync.on(type, handler)

    def applied() -> list:
        return [e.payload["n"] for e in node.evidence.entries(action="test.received")]

    return applied


def send_pings(node: Node, to: str, numbers, *, space_id: str = SPACE, per_tx: int = 1) -> list[str]:
    ids: list[str] = []
    numbers = list(numbers)
    for i in range(0, len(numbers), per_tx):
        chunk = numbers[i : i + per_tx]
        ids += node.store.db.write(lambda conn, chunk=chunk: [
            node.sync.send(conn, space_id, to=to, type="test.ping", body={"n": n}) for n in chunk])
    return ids


def published_bytes(node: Node, type: str = "test.ping") -> bytes:  # noqa: A002
    """The bytes the node published for its first outbox row of ``type`` (signed as the link signs it)."""
    payload, sign_at = node.store.db.read(lambda c: c.execute(
        "SELECT payload, sign_at FROM sync_outbox WHERE type = ? ORDER BY id", (type,)).fetchone())
    return bytes(payload) if sign_at is None else sign_stored(node.sync.signing_key(), bytes(payload), sign_at)


def queued(node: Node, space_id: str = SPACE) -> int:
    return node.sync.status(space_id)[0].queued
