"""Signed statements: a JSON object whose ``sig`` is the Ed25519 signature (base64url) over the
RFC 8785 bytes of every other field, version and type included.

The operator signs its revocation lists, listing approvals, filing receipts and invitations this
way; what each kind holds is in :mod:`appliance.domain.membership`. ``entry_sha256`` is how a
statement names the document it is about (a catalog entry, an agreement).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from appliance.crypto.jcs import canonical, sha256
from appliance.crypto.keys import SigningKey, public_key_from_did, verify
from appliance.domain.membership import STATEMENT_VERSION
from appliance.errors import BadSignature, LocalText, MalformedDid, MalformedMessage, shown


def entry_sha256(entry: object) -> str:
    """Hex SHA-256 of the RFC 8785 bytes of a catalog entry or an agreement."""
    return sha256(canonical(entry)).hex()


def sign_statement(key: SigningKey, statement: dict) -> dict:
    """Return ``statement`` with ``sig``: Ed25519 over the RFC 8785 bytes of every other field."""
    if "sig" in statement:
        raise ValueError("the statement is already signed")
    return {**statement, "sig": _b64url(key.sign(canonical(statement)))}


def verify_statement(statement: object, *, kind: str, signer: str, fields: Mapping[str, type]) -> dict:
    """Check a signed statement of type ``kind`` made by ``signer`` (a did:key); return it.

    ``fields`` names the fields besides ``v``/``type``/``sig`` and their JSON types; other fields
    are refused. Raises MalformedMessage for a wrong shape and BadSignature for a bad signature.
    """
    what = LocalText("domain.reason.statement", kind)
    if not isinstance(statement, dict):
        raise MalformedMessage(LocalText("domain.reason.statement_not_object", what))
    expected = {"v", "type", "sig", *fields}
    extra, missing = set(statement) - expected, expected - set(statement)
    if extra or missing:
        key = "domain.reason.statement_unknown_field" if extra else "domain.reason.statement_missing_field"
        raise MalformedMessage(LocalText(key, what, shown(sorted(extra or missing)[0])))
    if statement["v"] != STATEMENT_VERSION or statement["type"] != kind:
        raise MalformedMessage(LocalText("domain.reason.statement_version", what, shown(statement["v"]),
                                         shown(statement["type"])))
    for name, typ in fields.items():
        if not isinstance(statement[name], typ) or (typ is int and isinstance(statement[name], bool)):
            raise MalformedMessage(LocalText("domain.reason.statement_field_type", repr(name), what))
    try:
        signature = _unb64url(statement["sig"])
        public_key = public_key_from_did(signer)
    except (ValueError, TypeError, MalformedDid):
        raise BadSignature(what) from None
    unsigned = {k: v for k, v in statement.items() if k != "sig"}
    try:
        signed_bytes = canonical(unsigned)
    except ValueError as e:  # a value canonical JSON cannot hold (an unsafe number, a lone surrogate)
        raise MalformedMessage(LocalText("domain.reason.statement_not_canonical", what, str(e))) from None
    verify(public_key, signed_bytes, signature, what=what)
    return statement


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
