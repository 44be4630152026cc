"""What a transfer is on this node, as the service and the adapters read it: rows of ``transfer``,
timeline steps, received data, the events adapters hear, and the evidence actions."""

from __future__ import annotations

import json
from dataclasses import dataclass

from appliance.errors import LocalText
from appliance.services.delivery import manifest as mf



class Actions:
    REQUESTED = "transfer.requested"
    STARTED = "transfer.started"
    SUSPENDED = "transfer.suspended"
    COMPLETED = "transfer.completed"
    TERMINATED = "transfer.terminated"
    REFUSED = "transfer.refused"
    RECEIVED = "data.received"
    RECEIPT = "transfer.receipt_filed"


@dataclass(frozen=True)
class Transfer:
    id: str
    peer_pid: str | None
    role: str
    space_id: str
    peer: str
    negotiation_id: str
    agreement_id: str
    dataset_id: str
    resource_id: str | None
    version: int | None
    state: str
    path: str | None
    chunks_done: int
    chunks_total: int | None
    bytes_done: int
    bytes_total: int | None
    reason: str | None
    created: str
    updated: str
    object_id: str | None = None
    mode: str = "pull"  # pull: the consumer connects to the provider; push: the provider to the consumer


@dataclass(frozen=True)
class TransferStep:
    ts: str
    event: str
    direction: str
    state_before: str
    state_after: str
    reason: str | None


@dataclass(frozen=True)
class ReceivedData:
    object_id: str
    transfer_id: str
    negotiation_id: str
    agreement_id: str
    provider: str
    dataset_id: str
    resource_id: str
    version: int
    size: int
    sha256: str
    received: str
    name: str = "data"  # the object's name in the manifest (a relative path)
    part: int = 0  # its place among the delivery's objects


RECEIVED_COLS = ("object_id, transfer_id, negotiation_id, agreement_id, provider, dataset_id, resource_id, version, "
                 "size, sha256, received, name, part")


@dataclass(frozen=True)
class TransferChanged:
    transfer_id: str
    role: str
    state: str
    path: str | None


@dataclass(frozen=True)
class TransferProgress:
    transfer_id: str
    chunks_done: int
    chunks_total: int
    bytes_done: int
    bytes_total: int
    rate: float = 0.0  # bytes per second, smoothed over a few seconds (rate.py); 0.0 while unknown
    eta: float | None = None  # seconds left at that rate; None while unknown, 0.0 when done


COLS = ("id, peer_pid, role, space_id, peer, negotiation_id, agreement_id, dataset_id, resource_id, version, "
         "state, path, chunks_done, manifest, bytes_done, reason, created, updated, object_id, mode")


def transfer_row(r) -> Transfer:
    m = json.loads(r[13]) if r[13] else None
    return Transfer(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
                    mf.chunk_total(m) if m else None, r[14], m["size"] if m else None, shown_reason(r[15]), r[16],
                    r[17], r[18], r[19])


_CODED = "dsnode:reason:"


def stored_reason(reason: str | LocalText | None) -> str | None:
    """A reason as kept: one of ours as its key and parameters (shown in each reader's language),
    a person's or a peer's text as it is."""
    if isinstance(reason, LocalText):
        return _CODED + json.dumps({"key": reason.key, "args": [str(a) for a in reason.args]}, ensure_ascii=False)
    return reason


def shown_reason(stored: str | None) -> str | None:
    """A kept reason in the current language."""
    if not stored or not stored.startswith(_CODED):
        return stored
    try:
        coded = json.loads(stored.removeprefix(_CODED))
        return LocalText(coded["key"], *coded["args"]).message()
    except (ValueError, KeyError, TypeError):
        return stored
