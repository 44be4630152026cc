"""The node's key chain: an inception key whose did:key is the node id, then rotations.

A rotation statement names the node, the previous and the next key, and is signed by both: the
previous key vouches for its successor, the next key proves it is held. A verifier that knows only
the node id can walk the chain and learn every public key the node has used, so evidence signed
with a retired key keeps verifying.

What a rotation statement holds and how the links of a chain must fit is here; the keys, the
signatures and :class:`~appliance.crypto.key_chain.KeyRecord` are :mod:`appliance.crypto.key_chain`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

from appliance.errors import IdentityError, LocalText

STATEMENT_TYPE = "dsnode.key-rotation"


class ChainLink(Protocol):
    @property
    def seq(self) -> int: ...

    @property
    def did(self) -> str: ...

    @property
    def statement(self) -> dict | None: ...


def rotation_body(node_did: str, seq: int, previous_did: str, next_did: str, ts: str) -> dict:
    """What both keys of a rotation sign: key ``seq`` of ``node_did`` is ``next_did``, after ``previous_did``."""
    return {"v": 1, "type": STATEMENT_TYPE, "node": node_did, "seq": seq, "previous": previous_did,
            "next": next_did, "ts": ts}


def check_chain_links(node_did: str, records: Sequence[ChainLink]) -> None:
    """The chain starts with the inception key and each next key has a rotation statement naming
    it and its predecessor (the signatures are checked in :func:`appliance.crypto.key_chain.verify_key_chain`)."""
    if not records or records[0].seq != 0 or records[0].did != node_did:
        raise IdentityError(LocalText("domain.reason.chain_no_inception", node_did))
    for prev, rec in itertools.pairwise(records):
        if rec.seq != prev.seq + 1 or not rec.statement:
            raise IdentityError(LocalText("domain.reason.chain_no_statement", rec.seq, node_did))
        body = rec.statement.get("body", {})
        expected = {"v": 1, "type": STATEMENT_TYPE, "node": node_did, "seq": rec.seq, "previous": prev.did,
                    "next": rec.did}
        if any(body.get(k) != v for k, v in expected.items()):
            raise IdentityError(LocalText("domain.reason.chain_mismatch", rec.seq, node_did))
