"""The node's key chain: an inception key whose did:key is the node id, then rotations.

A rotation statement names the node, the previous and the next key, and is signed by both: the
previous key vouches for its successor, the next key proves it is held. A verifier that knows only
the node id can walk the chain and learn every public key the node has used, so evidence signed
with a retired key keeps verifying.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from appliance.crypto.jcs import canonical
from appliance.crypto.keys import SigningKey, public_key_from_did, verify
from appliance.errors import BadSignature, IdentityError

STATEMENT_TYPE = "dsnode.key-rotation"


@dataclass(frozen=True)
class KeyRecord:
    seq: int
    did: str
    public_key: bytes
    created: str
    retired: str | None = None
    statement: dict | None = None

    def to_json(self) -> dict:
        data = {"seq": self.seq, "did": self.did, "created": self.created}
        if self.retired:
            data["retired"] = self.retired
        if self.statement:
            data["statement"] = self.statement
        return data

    @classmethod
    def from_json(cls, data: dict) -> KeyRecord:
        return cls(
            seq=int(data["seq"]),
            did=str(data["did"]),
            public_key=public_key_from_did(str(data["did"])),
            created=str(data["created"]),
            retired=data.get("retired"),
            statement=data.get("statement"),
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rotation_statement(node_did: str, seq: int, previous: SigningKey, nxt: SigningKey, ts: str) -> dict:
    body = {"v": 1, "type": STATEMENT_TYPE, "node": node_did, "seq": seq, "previous": previous.did, "next": nxt.did, "ts": ts}
    message = canonical(body)
    return {"body": body, "sig_previous": _b64(previous.sign(message)), "sig_next": _b64(nxt.sign(message))}


def verify_key_chain(node_did: str, records: list[KeyRecord]) -> None:
    """Check that ``records`` is an unbroken chain of keys starting from the node's inception key."""
    if not records or records[0].seq != 0 or records[0].did != node_did:
        raise IdentityError(f"the key chain of {node_did} does not start with its inception key")
    for prev, rec in zip(records, records[1:]):
        if rec.seq != prev.seq + 1 or not rec.statement:
            raise IdentityError(f"key {rec.seq} of {node_did} has no rotation statement")
        body = rec.statement.get("body", {})
        expected = {"v": 1, "type": STATEMENT_TYPE, "node": node_did, "seq": rec.seq, "previous": prev.did, "next": rec.did}
        if any(body.get(k) != v for k, v in expected.items()):
            raise IdentityError(f"the rotation statement for key {rec.seq} of {node_did} does not match the chain")
        message = canonical(body)
        try:
            verify(prev.public_key, message, _unb64(rec.statement["sig_previous"]), what=f"key rotation {rec.seq}")
            verify(rec.public_key, message, _unb64(rec.statement["sig_next"]), what=f"key rotation {rec.seq}")
        except (KeyError, ValueError) as e:
            raise BadSignature(f"key rotation {rec.seq}") from e
