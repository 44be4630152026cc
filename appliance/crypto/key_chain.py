"""The node's key chain, signed and checked: each key's record, the rotation statement both keys
sign, and the walk from the inception key (see :mod:`appliance.domain.identity` for what they hold)."""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass

from appliance.crypto.jcs import canonical
from appliance.crypto.keys import SigningKey, public_key_from_did, verify
from appliance.domain.identity import check_chain_links, rotation_body
from appliance.errors import BadSignature, LocalText


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
    body = rotation_body(node_did, seq, previous.did, nxt.did, ts)
    message = canonical(body)
    return {"body": body, "sig_previous": _b64(previous.sign(message)), "sig_next": _b64(nxt.sign(message))}


def verify_key_chain(node_did: str, records: list[KeyRecord]) -> None:
    """Check that ``records`` is an unbroken chain of keys starting from the node's inception key."""
    check_chain_links(node_did, records)
    for prev, rec in itertools.pairwise(records):
        statement = rec.statement
        assert statement is not None  # check_chain_links saw it
        message = canonical(statement["body"])
        what = LocalText("domain.reason.key_rotation", rec.seq)
        try:
            verify(prev.public_key, message, _unb64(statement["sig_previous"]), what=what)
            verify(rec.public_key, message, _unb64(statement["sig_next"]), what=what)
        except (KeyError, ValueError) as e:
            raise BadSignature(what) from e
