"""Envelopes for space sync: signing on the hot path, sealed bodies bound to their envelope, and
the checks every received message goes through before anything is stored.

Sealed bodies: the plaintext inside the sealed box is ``{"v":1,"from","id","space","type","body"}``,
and opening checks those fields against the (verified) envelope, so a sealed body cannot be lifted
into another envelope, by another sender, or replayed under a new message id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from appliance.crypto import envelope
from appliance.crypto.jcs import MAX_SAFE_INTEGER, canonical
from appliance.crypto.keys import SigningKey, did_from_public_key, public_key_from_did
from appliance.domain.sync import DropReason, TopicRule, topic_rule
from appliance.errors import BadSignature, LocalText, MalformedDid, MalformedMessage

SEAL_VERSION = 1
_SEAL_FIELDS = ("v", "from", "id", "space", "type", "body")


@lru_cache(maxsize=4096)
def checked_did(did: str) -> str:
    """``did`` if it is a valid did:key (cached: the same few peers come up again and again)."""
    public_key_from_did(did)
    return did


def sign_and_encode(key: SigningKey, *, from_did: str, type: str, space: str, to: str | None,  # noqa: A002
                    seq: int, ts: str, body: object, msg_id: str) -> bytes:
    """The published bytes of a signed envelope: the same bytes as
    ``envelope.encode(envelope.sign_envelope(...))``, built in one pass with the body
    canonicalised once (the sender's own fields are known good; ``to`` is checked)."""
    unsigned, at = encode_unsigned(from_did=from_did, type=type, space=space, to=to, seq=seq, ts=ts, body=body,
                                   msg_id=msg_id)
    return sign_stored(key, unsigned, at)


def encode_unsigned(*, from_did: str, type: str, space: str, to: str | None,  # noqa: A002
                    seq: int, ts: str, body: object, msg_id: str) -> tuple[bytes, int]:
    """An envelope as the outbox keeps it until it is published: canonical, without ``kid`` and
    ``sig``, and the offset where they go in (:func:`sign_stored` puts them there).

    Keeping the signature out of the writer's transaction lets the sending thread sign while the
    store's writer goes on. Ed25519 signatures are deterministic, so a resend has the same bytes;
    a key rotation signs what is still kept unsigned with the retiring key (``outbox.sign_unsigned``)."""
    if not isinstance(type, str) or not 0 < len(type) <= envelope.MAX_TEXT:
        raise ValueError("message type must be a non-empty string of at most 256 characters")
    if to is not None:
        checked_did(to)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SAFE_INTEGER:
        raise ValueError("seq must be an integer from 0 to 2**53 - 1")
    # RFC 8785 member order: body, from, id, (kid,) seq, (sig,) space, to, ts, type, v
    head = b"".join((b'{"body":', canonical(body), b',"from":', _const(from_did), b',"id":', _text(msg_id)))
    return b"".join((head, b',"seq":', str(seq).encode(), b',"space":', _const(space), b',"to":',
                     b"null" if to is None else _const(to), b',"ts":', _text(ts), b',"type":', _const(type),
                     b',"v":1}')), len(head)


SIGNED_EXTRA = len(b',"kid":"",' + b'"sig":""') + 86
"""How many bytes ``sign_stored`` adds besides the kid's did (the signature is 86 base64url characters)."""


def sign_stored(key: SigningKey, unsigned: bytes, at: int) -> bytes:
    """The published bytes of an envelope kept by :func:`encode_unsigned`: ``key``'s did as ``kid``
    at ``at`` and the signature after ``seq``. ValueError if ``unsigned`` is not such an envelope."""
    if unsigned[at : at + 7] != b',"seq":':
        raise ValueError("not an unsigned envelope (no seq where the key goes)")
    cut = unsigned.index(b',"space":', at)  # the seq is digits only: its end is the next member
    head = b"".join((unsigned[:at], b',"kid":', _const(_did_of(key.public_key)), unsigned[at:cut]))
    tail = unsigned[cut:]
    sig = envelope._b64url_encode(key.sign(head + tail)).encode()  # noqa: SLF001
    return b"".join((head, b',"sig":"', sig, b'"', tail))


@lru_cache(maxsize=4096)
def _const(value: str) -> bytes:
    """``_text`` of values that repeat (dids, space ids, message types)."""
    return _text(value)


@lru_cache(maxsize=64)
def _did_of(public_key: bytes) -> str:
    return did_from_public_key(public_key)


def _text(value: str) -> bytes:
    """RFC 8785 form of a string (the stdlib encoder matches it; lone surrogates take the slow path)."""
    try:
        return _STRING.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        return canonical(value)


_STRING = json.JSONEncoder(ensure_ascii=False)


def seal(body: object, *, to: str, from_did: str, msg_id: str, space: str, type: str) -> dict:  # noqa: A002
    inner = {"v": SEAL_VERSION, "from": from_did, "id": msg_id, "space": space, "type": type, "body": body}
    return envelope.seal_body(inner, to)


def open_sealed(env: dict, key: SigningKey) -> object:
    """The body of a verified envelope sealed to ``key``; MalformedMessage unless it is bound to ``env``."""
    inner = envelope.open_body(env, key)
    if not isinstance(inner, dict) or set(inner) != set(_SEAL_FIELDS) or inner["v"] != SEAL_VERSION:
        raise MalformedMessage(LocalText("sync.reason.sealed_shape"))
    for name in ("from", "id", "space", "type"):
        if inner[name] != env[name]:
            raise MalformedMessage(LocalText("sync.reason.sealed_other_message", name))
    return inner["body"]


def is_sealed(body: object) -> bool:
    return isinstance(body, dict) and set(body) == {"sealed"}


# --- checking what arrives -------------------------------------------------------------------


class Drop(Exception):
    """A received message is dropped for ``reason`` (a DropReason); ``detail`` is for the log."""

    def __init__(self, reason: DropReason, detail: str, sender: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.sender = sender


@dataclass(frozen=True)
class Checked:
    """A message that passed every check that needs no store."""

    topic: str
    rule: TopicRule
    envelope: dict | None  # None: a retained topic was cleared
    body: object
    sender: str | None
    retained: bool
    payload: bytes  # as received (kept if applying it hits a bug)

    @property
    def stream(self) -> str:
        return self.topic


@dataclass(frozen=True)
class Inspector:
    """The checks of one space, for one node. ``resolve_key(from, kid, env)`` returns a public key."""

    space_id: str
    my_did: str
    operator_did: str
    key: Callable[[], SigningKey]  # the node's current key (it opens bodies sealed to it)
    resolve_key: Callable[[str, str, str, dict], bytes]
    dedup_window: float
    max_future_skew: float
    max_size: int

    def inspect(self, topic: str, payload: bytes, retained: bool, now: datetime) -> Checked | None:
        """Check one message (``topic`` relative to the space); None for our own echo. Raises Drop."""
        rule = topic_rule(topic, self.operator_did)
        if rule is None:
            raise Drop(DropReason.MALFORMED, f"unknown topic {topic!r}")
        if len(payload) > self.max_size:
            raise Drop(DropReason.OVERSIZED, f"{len(payload)} bytes on {topic}")
        if not payload:
            if not retained:
                raise Drop(DropReason.MALFORMED, f"empty message on {topic}")
            return Checked(topic, rule, None, None, rule.owner, True, payload)
        try:
            env = envelope.decode(payload, self.max_size)
        except MalformedMessage as e:
            raise Drop(DropReason.MALFORMED, e.message("en")) from None
        if not isinstance(env.get("sig"), str) or not env.get("sig"):
            raise Drop(DropReason.UNSIGNED, f"no signature on {topic}")
        if env.get("space") != self.space_id:
            raise Drop(DropReason.WRONG_SPACE, f"a message for space {str(env.get('space'))[:80]!r}")
        try:
            envelope.verify_envelope(env, lambda from_did, kid: self.resolve_key(from_did, kid, topic, env))
        except BadSignature as e:
            raise Drop(DropReason.BAD_SIGNATURE, e.message("en"), _str_or_none(env.get("from"))) from None
        except (MalformedMessage, MalformedDid) as e:
            raise Drop(DropReason.MALFORMED, e.message("en")) from None
        sender = env["from"]
        self._check_topic(rule, env, topic)
        if sender == self.my_did and not retained:
            return None  # our own broadcast coming back
        if not retained:
            self._check_fresh(env, now)
        body = env["body"]
        if env["to"] == self.my_did and is_sealed(body):
            try:
                body = open_sealed(env, self.key())
            except MalformedMessage as e:
                raise Drop(DropReason.MALFORMED, e.message("en"), sender) from None
        return Checked(topic, rule, env, body, sender, retained, payload)

    def _check_topic(self, rule: TopicRule, env: dict, topic: str) -> None:
        sender, to = env["from"], env["to"]
        if rule.owner is not None and sender != rule.owner:
            raise Drop(DropReason.BAD_SIGNATURE, f"{topic} carries a message signed by {sender}", sender)
        if rule.operator and sender != self.operator_did:
            raise Drop(DropReason.BAD_SIGNATURE, f"{topic} carries a message not from the operator", sender)
        if rule.to is not None and (to != rule.to or to != self.my_did):
            raise Drop(DropReason.NOT_FOR_ME, f"a message on {topic} addressed to {to}", sender)
        if to is not None and to != self.my_did:
            raise Drop(DropReason.NOT_FOR_ME, f"a message on {topic} addressed to {to}", sender)

    def _check_fresh(self, env: dict, now: datetime) -> None:
        ts = datetime.fromisoformat(env["ts"][:-1]).replace(tzinfo=timezone.utc)  # form checked by verify
        age = (now - ts).total_seconds()
        if age > self.dedup_window:
            raise Drop(DropReason.STALE, f"message {env['id']} is {age:.0f} s old", env["from"])
        if -age > self.max_future_skew:
            raise Drop(DropReason.STALE, f"message {env['id']} is dated {-age:.0f} s ahead", env["from"])


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def body_json(body: object) -> str:
    """A body as stored text: UTF-8 JSON (not ASCII-escaped, so a LIKE search finds Chinese)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
