"""The signed message envelope of the space protocol.

::

    {"v": 1, "type": "...", "id": "...", "space": "...", "from": "did:key:...",
     "kid": "did:key:...", "to": "did:key:..." | null, "seq": 7,
     "ts": "2026-11-22T10:00:00.123Z", "body": <any JSON>, "sig": "<base64url>"}

``from`` is the sender's node id (its inception DID, stable across key rotations); ``kid`` is
the did:key of the key that signed (equal to ``from`` until the node rotates its key).
``sig`` is the Ed25519 signature over the RFC 8785 bytes of every other field, ``v`` included,
in base64url without padding. A direct message's body may be sealed to the recipient:
``{"sealed": "<base64>"}`` (see :func:`seal_body`).
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache
from typing import TypeGuard

from appliance.clock import rfc3339 as format_ts  # the form of ``ts``
from appliance.crypto import sealed
from appliance.crypto.jcs import MAX_SAFE_INTEGER, canonical
from appliance.crypto.keys import SIGNATURE_SIZE, SigningKey, public_key_from_did, verify
from appliance.errors import BadSignature, LocalText, MalformedDid, MalformedMessage

VERSION = 1
MAX_SIZE = 256 * 1024
FIELDS = ("v", "type", "id", "space", "from", "kid", "to", "seq", "ts", "body", "sig")
MAX_TEXT = 256  # longest type, id or space we accept
_TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", re.ASCII)

KeyResolver = Callable[[str, str], bytes]
"""``resolve_key(from_did, kid) -> public key bytes``; raises if ``kid`` is not ``from``'s key."""


# --- building and checking -------------------------------------------------------------------


def sign_envelope(
    key: SigningKey,
    *,
    from_did: str,
    type: str,  # noqa: A002 - the protocol's field name
    space: str,
    to: str | None,
    seq: int,
    body: object,
    ts: str | None = None,
    id: str | None = None,  # noqa: A002 - the protocol's field name
) -> dict:
    """Build and sign an envelope; ``kid`` is ``key``'s did:key.

    ``ts`` defaults to now (UTC, milliseconds) and ``id`` to 128 random bits in hex; pass them
    for deterministic output. Raises ``ValueError`` if a field would make a malformed envelope.
    """
    env = {
        "v": VERSION,
        "type": type,
        "id": id if id is not None else secrets.token_hex(16),
        "space": space,
        "from": from_did,
        "kid": key.did,
        "to": to,
        "seq": seq,
        "ts": ts if ts is not None else format_ts(datetime.now(timezone.utc)),
        "body": body,
    }
    problem = _field_problem(env, signed=False)
    if problem:
        raise ValueError(str(problem))
    env["sig"] = _b64url_encode(key.sign(canonical(env)))
    return env


def verify_envelope(env: dict, resolve_key: KeyResolver | None = None) -> dict:
    """Check an envelope's shape and signature and return it.

    ``resolve_key(from_did, kid)`` returns the public key that ``kid`` names for node
    ``from_did`` (after checking it belongs to that node). The default accepts only
    ``kid == from`` and takes the key from the DID.

    Raises ``MalformedMessage`` (naming the field) for a wrong shape or version, and
    ``BadSignature`` if the signature does not verify.
    """
    if not isinstance(env, dict):
        raise MalformedMessage(LocalText("crypto.reason.message_not_object"))
    version = env.get("v")
    if isinstance(version, int) and not isinstance(version, bool) and version != VERSION:
        raise MalformedMessage(LocalText("crypto.reason.envelope_version", _shown(version), VERSION))
    problem = _field_problem(env, signed=True, body=False)  # the body is checked by canonicalising it below
    if problem:
        raise MalformedMessage(problem)
    unsigned = {name: env[name] for name in FIELDS if name != "sig"}
    try:
        signed_bytes = canonical(unsigned)  # every other field is known good: only the body can fail
    except ValueError:
        problem = _check_body(env["body"]) or LocalText("crypto.reason.field_not_canonical")
        raise MalformedMessage(LocalText("crypto.reason.field_problem", repr("body"), problem)) from None
    problem = _check_sig(env["sig"])
    if problem:
        raise MalformedMessage(LocalText("crypto.reason.field_problem", repr("sig"), problem))
    what = LocalText("crypto.reason.message_from", env["id"], env["from"])
    resolve = resolve_key or _own_key
    public_key = resolve(env["from"], env["kid"])
    verify(public_key, signed_bytes, _b64url_decode(env["sig"]), what=what)
    return env


def _own_key(from_did: str, kid: str) -> bytes:
    """Default resolver: the message must be signed by the key the node id was made from."""
    if kid != from_did:
        raise BadSignature(LocalText("crypto.reason.unknown_signing_key", from_did, kid))
    return _key_of(kid)


def _field_problem(env: dict, *, signed: bool, body: bool = True) -> LocalText | None:
    """Describe what is wrong with the envelope's fields, or return None if nothing is.

    ``body=False`` leaves out the body and the signature (checked after it) for a caller that
    canonicalises the body anyway (one pass instead of two)."""
    expected = set(FIELDS) if signed else set(FIELDS) - {"sig"}
    unknown = sorted(set(env) - expected)
    if unknown:
        return LocalText("crypto.reason.field_unknown", repr(unknown[0]))
    missing = [name for name in FIELDS if name in expected and name not in env]
    if missing:
        return LocalText("crypto.reason.field_missing", repr(missing[0]))
    for name, check in _CHECKS.items():
        if not body and name in ("body", "sig"):
            continue
        if name in expected:
            problem = check(env[name])
            if problem:
                return LocalText("crypto.reason.field_problem", repr(name), problem)
    return None


def _check_version(value: object) -> LocalText | None:
    if not _is_int(value):
        return LocalText("crypto.reason.field_not_integer")
    if value != VERSION:
        return LocalText("crypto.reason.field_version", _shown(value))
    return None


def _shown(number: int) -> str | LocalText:
    """A received integer for a message (str() refuses one of over 4,300 digits)."""
    return str(number) if abs(number) < 10**9 else LocalText("crypto.reason.version_beyond")


def _check_text(value: object) -> LocalText | None:
    if not isinstance(value, str) or not value:
        return LocalText("crypto.reason.field_not_text")
    if len(value) > MAX_TEXT:
        return LocalText("crypto.reason.field_too_long", MAX_TEXT)
    return None


def _check_did(value: object) -> LocalText | None:
    if not isinstance(value, str):
        return LocalText("crypto.reason.field_not_did")
    try:
        _key_of(value)
    except MalformedDid:
        return LocalText("crypto.reason.field_bad_did")
    return None


@lru_cache(maxsize=4096)
def _key_of(did: str) -> bytes:
    """``public_key_from_did``, remembered: the same few peers sign message after message."""
    return public_key_from_did(did)


def _check_to(value: object) -> LocalText | None:
    return None if value is None else _check_did(value)


def _check_seq(value: object) -> LocalText | None:
    if not _is_int(value) or not 0 <= value <= MAX_SAFE_INTEGER:
        return LocalText("crypto.reason.field_seq_range", MAX_SAFE_INTEGER)
    return None


def _check_ts(value: object) -> LocalText | None:
    if not isinstance(value, str) or not _TS_RE.fullmatch(value):
        return LocalText("crypto.reason.field_ts_form", "2026-11-22T10:00:00.123Z")
    try:
        datetime.fromisoformat(value[:-1])  # the pattern above fixed the form; this checks the date
    except ValueError:
        return LocalText("crypto.reason.field_ts_not_real")
    return None


def _check_body(value: object) -> LocalText | None:
    try:
        canonical(value)
    except ValueError as exc:
        return LocalText("crypto.reason.field_not_canonical_because", str(exc))
    return None


def _check_sig(value: object) -> LocalText | None:
    if not isinstance(value, str):
        return LocalText("crypto.reason.field_not_base64url")
    try:
        raw = _b64url_decode(value)
    except ValueError:
        return LocalText("crypto.reason.field_bad_base64url")
    if len(raw) != SIGNATURE_SIZE:
        return LocalText("crypto.reason.field_signature_size", SIGNATURE_SIZE)
    return None


_CHECKS = {
    "v": _check_version,
    "type": _check_text,
    "id": _check_text,
    "space": _check_text,
    "from": _check_did,
    "kid": _check_did,
    "to": _check_to,
    "seq": _check_seq,
    "ts": _check_ts,
    "body": _check_body,
    "sig": _check_sig,
}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Strict base64url without padding: one spelling per byte string."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64url_encode(raw) != text:  # non-zero trailing bits
        raise ValueError("not canonical base64url")
    return raw


# --- wire form -------------------------------------------------------------------------------


def encode(env: dict) -> bytes:
    """The bytes to publish: canonical JSON of the whole envelope."""
    return canonical(env)


def decode(data: bytes, max_size: int = MAX_SIZE) -> dict:
    """Parse received bytes into an envelope dict (not yet verified: call verify_envelope).

    Raises ``MalformedMessage`` for data over ``max_size`` bytes, or data that is not a JSON
    value :func:`parse_value` accepts, or a JSON value that is not an object.
    """
    obj = parse_value(data, what=LocalText("crypto.reason.the_message"), max_size=max_size)
    if not isinstance(obj, dict):
        raise MalformedMessage(LocalText("crypto.reason.message_not_object"))
    return obj


MAX_DEPTH = 48
"""Deepest nesting of arrays and objects accepted from a peer (an ODRL offer inside a DCAT
dataset inside a body is about 10 deep)."""
MAX_KEY = 1024
"""Longest object key accepted from a peer, in characters."""


def parse_value(data: bytes, *, what: LocalText, max_size: int = MAX_SIZE) -> object:
    """The JSON value of bytes received from a peer, checked as every received value is.

    Refused with ``MalformedMessage`` naming ``what``: more than ``max_size`` bytes; invalid UTF-8
    or JSON; a repeated object key or one longer than :data:`MAX_KEY`; nesting deeper than
    :data:`MAX_DEPTH`; NaN, Infinity or a number too large for a double (``1e400``); an integer
    outside ±(2**53 − 1) (canonical JSON cannot carry it: such values travel as strings); a string
    with a lone surrogate (``"\\ud800"``: it has no UTF-8 form). What passes can be canonicalised,
    hashed and stored. The outer envelope (:func:`decode`) and a sealed body (:func:`open_body`)
    both go through here.
    """
    if len(data) > max_size:
        raise MalformedMessage(LocalText("crypto.reason.value_too_large", what, len(data), max_size))
    try:
        text = bytes(data).decode("utf-8")  # strict: surrogates encoded as UTF-8 are refused here
        obj = _DECODER.decode(text)
    except (UnicodeDecodeError, json.JSONDecodeError, _JunkJson) as exc:
        # our own checks say why in the user's language; the json and codec modules only in English
        why = exc.args[0] if isinstance(exc, _JunkJson) else str(exc)
        raise MalformedMessage(LocalText("crypto.reason.value_not_json", what, why)) from None
    except RecursionError:
        raise MalformedMessage(LocalText("crypto.reason.value_too_deep", what)) from None
    # Nesting is never deeper than the number of '[' and '{' in the text: walk only when it could be.
    if text.count("[") + text.count("{") > MAX_DEPTH and depth_exceeds(obj, MAX_DEPTH):
        raise MalformedMessage(LocalText("crypto.reason.value_deeper_than", what, MAX_DEPTH))
    # A lone surrogate can only come from an escape \uD800-\uDFFF: walk only when one is there.
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(obj):
        raise MalformedMessage(LocalText("crypto.reason.value_lone_surrogate", what))
    return obj


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _JunkJson(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _JunkJson(LocalText("crypto.reason.json_repeated_key"))
    for key in obj:
        if len(key) > MAX_KEY:
            raise _JunkJson(LocalText("crypto.reason.json_key_too_long", MAX_KEY))
    return obj


def _no_constant(name: str) -> object:
    raise _JunkJson(LocalText("crypto.reason.json_constant", name))


def _safe_int(text: str) -> int:
    # 2**53 − 1 has 16 digits: a longer text is unsafe, and never reaches int() (4,300-digit limit)
    if len(text) > 17 or not -MAX_SAFE_INTEGER <= (value := int(text)) <= MAX_SAFE_INTEGER:
        raise _JunkJson(LocalText("crypto.reason.json_unsafe_integer", text[:24] + ("…" if len(text) > 24 else "")))
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _JunkJson(LocalText("crypto.reason.json_number_too_large", text[:24] + ("…" if len(text) > 24 else "")))
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant, parse_int=_safe_int,
    parse_float=_finite_float,
)


def depth_exceeds(obj: object, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``obj`` (without recursion)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if type(value) is dict:
            value = value.values()
        elif type(value) is not list:
            continue
        if depth > limit:
            return True
        stack.extend((item, depth + 1) for item in value if type(item) in (dict, list))
    return False


def _has_lone_surrogate(obj: object) -> bool:
    stack = [obj]
    while stack:
        value = stack.pop()
        if type(value) is str:
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif type(value) is dict:
            stack.extend(value)
            stack.extend(value.values())
        elif type(value) is list:
            stack.extend(value)
    return False


# --- sealed bodies ---------------------------------------------------------------------------


def seal_body(body: object, recipient_did: str) -> dict:
    """Encrypt ``body`` (any JSON value) to ``recipient_did``: ``{"sealed": "<base64>"}``."""
    ciphertext = sealed.seal(canonical(body), recipient_did)
    return {"sealed": base64.b64encode(ciphertext).decode("ascii")}


def open_body(env: dict, key: SigningKey) -> object:
    """Decrypt the sealed body of a (verified) envelope addressed to ``key``.

    Raises ``MalformedMessage`` if the body is not sealed, not for this key, or damaged.
    """
    body = env.get("body")
    if not isinstance(body, dict) or set(body) != {"sealed"} or not isinstance(body["sealed"], str):
        raise MalformedMessage(LocalText("crypto.reason.body_not_sealed"))
    try:
        ciphertext = base64.b64decode(body["sealed"], validate=True)
    except ValueError:  # binascii.Error, and a ValueError for a string that is not ASCII
        raise MalformedMessage(LocalText("crypto.reason.sealed_body_not_base64")) from None
    # The plaintext is checked exactly as a received envelope is (size, depth, numbers, strings).
    return parse_value(sealed.unseal(ciphertext, key), what=LocalText("crypto.reason.the_sealed_body"))
