"""Presence in a space: the node card (retained), the online/offline status (retained; the
offline one is the MQTT Will), what we know of peers, and the key chains that let a rotated key
sign for its node.

A node card::

    {"did": "did:key:…", "name": "车间一号", "org": "示例制造", "endpoints": [],
     "credential": {…MembershipCredential…} | null, "keys": [key records, inception first]}
"""

from __future__ import annotations

import hashlib
import json
import threading

from appliance.crypto.jcs import canonical
from appliance.crypto.keys import public_key_from_did
from appliance.crypto.key_chain import KeyRecord, verify_key_chain
from appliance.errors import ApplianceError, BadSignature, LocalText

CARD_TYPE = "dsnode.sync.card"
STATUS_TYPE = "dsnode.sync.status"


def card_body(node_did: str, name: str, org: str, keys: list[KeyRecord], credential: dict | None,
              endpoints: list | None = None) -> dict:
    return {
        "did": node_did,
        "name": name,
        "org": org,
        "endpoints": list(endpoints or []),
        "credential": credential,
        "keys": [{"seq": k.seq, "did": k.did, "created": k.created,
                  **({"statement": k.statement} if k.statement else {})} for k in keys],
    }


def card_hash(body: dict) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def status_body(state: str, *, session_present: bool | None = None) -> dict:
    """``{"state": "online"|"offline"}``; an online status also says whether the broker still had
    the node's session (``"session": "resumed"``) or not (``"new"``: messages sent to it while it had
    none were lost at the broker, so senders send again what it has not confirmed)."""
    body = {"state": state}
    if session_present is not None:
        body["session"] = "resumed" if session_present else "new"
    return body


def chain_from_card(did: str, body: object) -> list[KeyRecord]:
    """The verified key chain a card carries (just the inception key if it carries none)."""
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list) or not body["keys"]:
        return [KeyRecord(0, did, public_key_from_did(did), "")]
    try:
        records = [KeyRecord.from_json(k) for k in body["keys"]]
        verify_key_chain(did, records)
    except (ApplianceError, KeyError, TypeError, ValueError) as e:
        detail = e if isinstance(e, ApplianceError) else str(e)
        raise BadSignature(LocalText("sync.reason.card_key_chain", did, detail)) from None
    return records


class KeyDirectory:
    """Which keys sign for which node: learned from verified node cards, kept in ``sync_peer.keys``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, bytes]] = {}

    def load(self, conn) -> None:
        for did, keys in conn.execute("SELECT did, keys FROM sync_peer WHERE keys IS NOT NULL"):
            self._learn(did, [k["did"] for k in json.loads(keys)])

    def _learn(self, did: str, kids: list[str]) -> None:
        with self._lock:
            known = self._keys.setdefault(did, {})
            for kid in kids:
                known.pop(kid, None)
                known[kid] = public_key_from_did(kid)  # insertion order: the current key is last

    def current(self, did: str) -> str:
        """The key a node uses now, as far as we know (its did until a card shows a rotation)."""
        with self._lock:
            known = self._keys.get(did)
            return next(reversed(known)) if known else did

    def learn(self, did: str, records: list[KeyRecord]) -> None:
        self._learn(did, [r.did for r in records])

    def resolve(self, from_did: str, kid: str, topic: str, env: dict) -> bytes:
        """The public key ``kid`` for node ``from_did``; a card may introduce its own chain."""
        if kid == from_did:
            return public_key_from_did(kid)
        with self._lock:
            key = self._keys.get(from_did, {}).get(kid)
        if key is not None:
            return key
        if topic == f"node/{from_did}/card":
            for record in chain_from_card(from_did, env.get("body")):
                if record.did == kid:
                    return record.public_key
        raise BadSignature(LocalText("sync.reason.unknown_signer", from_did, kid))


def save_card(conn, space_id: str, did: str, body: dict, keys: list[KeyRecord], updated: str) -> None:
    name = body["name"] if isinstance(body.get("name"), str) else ""
    org = body["org"] if isinstance(body.get("org"), str) else ""
    conn.execute(
        "INSERT INTO sync_peer (space_id, did, name, org, card, keys, updated) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (space_id, did) DO UPDATE SET name = excluded.name, org = excluded.org, card = excluded.card, "
        "keys = excluded.keys, updated = excluded.updated",
        (space_id, did, name[:200], org[:200], json.dumps(body, ensure_ascii=False),
         json.dumps([{"seq": k.seq, "did": k.did} for k in keys]), updated),
    )


def save_presence(conn, space_id: str, did: str, state: str, ts: str, updated: str) -> None:
    conn.execute(
        "INSERT INTO sync_peer (space_id, did, presence, presence_ts, updated) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (space_id, did) DO UPDATE SET presence = excluded.presence, presence_ts = excluded.presence_ts, "
        "updated = excluded.updated",
        (space_id, did, state, ts, updated),
    )


def forget_card(conn, space_id: str, did: str) -> None:
    conn.execute("UPDATE sync_peer SET card = NULL WHERE space_id = ? AND did = ?", (space_id, did))
