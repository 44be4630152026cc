"""An evidence log entry and the bytes of it the log's Merkle tree commits to (RFC 8785 JSON).

What kinds of entry there are is :class:`appliance.domain.evidence.Action`; the tree is
:mod:`appliance.crypto.merkle`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from appliance.crypto.jcs import canonical

ENTRY_VERSION = 1
EMPTY_DETAILS = b"{}"  # what an entry without details hashes


@dataclass(frozen=True)
class EvidenceEntry:
    index: int
    ts: str
    actor: str
    action: str
    subject: str
    payload_hash: bytes
    payload: dict | None = None

    def _fields(self) -> dict:
        return {"index": self.index, "ts": self.ts, "actor": self.actor, "action": self.action,
                "subject": self.subject, "payload_hash": self.payload_hash.hex()}

    def leaf_data(self) -> bytes:
        """The bytes that go into the Merkle tree (RFC 8785 JSON; the version is inside)."""
        return canonical({"v": ENTRY_VERSION, **self._fields()})

    def to_json(self) -> dict:
        data = self._fields()
        if self.payload is not None:
            data["payload"] = self.payload
        return data

    @classmethod
    def from_json(cls, data: dict) -> EvidenceEntry:
        return cls(
            index=int(data["index"]),
            ts=str(data["ts"]),
            actor=str(data["actor"]),
            action=str(data["action"]),
            subject=str(data["subject"]),
            payload_hash=bytes.fromhex(data["payload_hash"]),
            payload=data.get("payload"),
        )


def payload_hash(payload: dict | None) -> bytes:
    return hashlib.sha256(canonical(payload) if payload is not None else EMPTY_DETAILS).digest()
