"""One-time invitations to a data space: a signed JSON document, a copyable text code and a QR image.

The invitation carries everything a node needs to reach the space and to prove it was invited::

    {"v": 1, "type": "dsnode.invitation", "space": "shanghai-auto-parts", "space_name": "…",
     "operator": "did:key:…", "broker": {"host": "…", "port": 8883, "tls_ca_pem": "…" | null},
     "token": {"id": "<16 hex>", "secret": "<base64url>"},
     "join": {"username": "join-<token id>", "password": "<base64url>"},
     "org": "…", "issued": "<RFC 3339>", "expires": "<RFC 3339>", "sig": "<base64url>"}

signed by the operator (Ed25519 over the RFC 8785 bytes of every other field). The text code is
``DSI1-`` followed by base64url (no padding) of the zlib-compressed RFC 8785 bytes. The token
secret is single use: the operator keeps only its SHA-256 and marks the token used in the same
transaction that admits (or rejects) the node.

Verifying the signature proves the invitation is whole and was made by the key named inside it;
whether that key is the operator you meant is for the person to check (the join command shows the
operator's id and the space name before it connects).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from appliance.clock import parse_rfc3339, rfc3339
from appliance.crypto.jcs import canonical
from appliance.crypto.keys import SigningKey
from appliance.crypto.statement import sign_statement, verify_statement
from appliance.domain.membership import STATEMENT_VERSION, check_space_id
from appliance.errors import (ApplianceError, BadSignature, InvitationExpired, InvitationInvalid, LocalText,
                              OperatorError)

KIND = "dsnode.invitation"
CODE_PREFIX = "DSI1-"
MAX_CODE_LENGTH = 64 * 1024
MAX_FILE = 4 * MAX_CODE_LENGTH  # a file holding a code or the JSON document
QR_MAX_BYTES = 2953  # what the largest QR code (version 40, level L) holds in byte mode
_FIELDS = {"space": str, "space_name": str, "operator": str, "broker": dict, "token": dict, "join": dict,
           "org": str, "issued": str, "expires": str}


@dataclass(frozen=True)
class Invitation:
    """A verified invitation."""

    document: dict

    @property
    def space_id(self) -> str:
        return self.document["space"]

    @property
    def space_name(self) -> str:
        return self.document["space_name"]

    @property
    def operator_did(self) -> str:
        return self.document["operator"]

    @property
    def broker_host(self) -> str:
        return self.document["broker"]["host"]

    @property
    def broker_port(self) -> int:
        return self.document["broker"]["port"]

    @property
    def tls_ca_pem(self) -> str | None:
        return self.document["broker"]["tls_ca_pem"]

    @property
    def token_id(self) -> str:
        return self.document["token"]["id"]

    @property
    def token_secret(self) -> str:
        return self.document["token"]["secret"]

    @property
    def join_username(self) -> str:
        return self.document["join"]["username"]

    @property
    def join_password(self) -> str:
        return self.document["join"]["password"]

    @property
    def org(self) -> str:
        return self.document["org"]

    @property
    def expires(self) -> str:
        return self.document["expires"]

    def code(self) -> str:
        return encode_code(self.document)

    def write_qr(self, path: Path, *, scale: int = 4) -> None:
        """Write the text code as a QR code PNG: error correction level M (or higher) where the code
        fits, else L; an OperatorError when it fits in no QR code. A TLS CA certificate takes most
        of the room: with an RSA-2048 one the code is about 1,800 characters (version 36-M), with an
        RSA-4096 one about 2,450 (level L); past about 1,550 bytes of certificate it cannot fit."""
        import segno

        code = self.code()
        for level in ("m", "l"):
            try:
                qr = segno.make(code, error=level, micro=False)
            except segno.DataOverflowError:
                continue
            qr.save(str(path), kind="png", scale=scale, border=4)
            return
        raise OperatorError(LocalText("invite.reason.qr_too_large", len(code), QR_MAX_BYTES))


def new_token() -> tuple[str, str, str]:
    """(token id, token secret, join password): fresh random values."""
    return secrets.token_hex(8), _b64url(secrets.token_bytes(24)), _b64url(secrets.token_bytes(24))


def join_username(token_id: str) -> str:
    return f"join-{token_id}"


def secret_hash(secret: str) -> str:
    """What the operator stores instead of the token secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: object, stored_hash: str) -> bool:
    return isinstance(secret, str) and hmac.compare_digest(secret_hash(secret), stored_hash)


def make_invitation(key: SigningKey, *, space_id: str, space_name: str, broker_host: str, broker_port: int,
                    tls_ca_pem: str | None, token_id: str, token_secret: str, join_password: str,
                    org: str, issued: datetime, valid_for: timedelta) -> Invitation:
    """Sign a new invitation with the operator key ``key``."""
    check_space_id(space_id)
    document = {
        "v": STATEMENT_VERSION, "type": KIND, "space": space_id, "space_name": space_name, "operator": key.did,
        "broker": {"host": broker_host, "port": int(broker_port), "tls_ca_pem": tls_ca_pem},
        "token": {"id": token_id, "secret": token_secret},
        "join": {"username": join_username(token_id), "password": join_password},
        "org": org, "issued": rfc3339(issued), "expires": rfc3339(issued + valid_for),
    }
    return Invitation(sign_statement(key, document))


def check_invitation(document: object, *, now: datetime | None = None) -> Invitation:
    """Verify an invitation document; raise InvitationInvalid or InvitationExpired."""
    try:
        doc = verify_statement(document, kind=KIND, signer=_operator_of(document), fields=_FIELDS)
        _check_parts(doc)
    except InvitationInvalid:
        raise
    except ApplianceError as e:
        raise InvitationInvalid(_reason(e)) from None
    if now is not None and now > parse_rfc3339(doc["expires"]):
        raise InvitationExpired(doc["expires"])
    return Invitation(doc)


def encode_code(document: dict) -> str:
    """The copyable text code of a signed invitation document."""
    return CODE_PREFIX + _b64url(zlib.compress(canonical(document), 9))


def decode_code(code: str) -> dict:
    """The invitation document in a text code (not yet verified); InvitationInvalid if unreadable."""
    text = "".join(code.split()) if isinstance(code, str) else ""
    if not text.startswith(CODE_PREFIX):
        raise InvitationInvalid(LocalText("membership.reason.code_prefix", CODE_PREFIX))
    if len(text) > MAX_CODE_LENGTH:
        raise InvitationInvalid(LocalText("membership.reason.code_too_long"))
    try:
        raw = _unb64url(text[len(CODE_PREFIX):])
        inflater = zlib.decompressobj()
        data = inflater.decompress(raw, MAX_CODE_LENGTH * 4)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("incomplete or too large")
        document = _json(data.decode("utf-8"))
    except (ValueError, zlib.error, binascii.Error, UnicodeDecodeError):
        raise InvitationInvalid(LocalText("membership.reason.code_damaged")) from None
    if not isinstance(document, dict):
        raise InvitationInvalid(LocalText("membership.reason.code_not_invitation"))
    return document


def load_invitation(code_or_file: str, *, now: datetime | None = None) -> Invitation:
    """Read an invitation from a text code, or from a file holding the code or the JSON document."""
    text = code_or_file.strip()
    if not text.startswith(CODE_PREFIX):
        path = Path(code_or_file)
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_FILE + 1)
            if len(raw) > MAX_FILE:
                raise InvitationInvalid(LocalText("membership.reason.file_too_large", repr(code_or_file[:40])))
            text = raw.decode("utf-8").strip()
        except (OSError, UnicodeDecodeError, ValueError):
            raise InvitationInvalid(LocalText("membership.reason.not_code_nor_file",
                                              repr(code_or_file[:40]))) from None
    document: object
    if text.startswith(CODE_PREFIX):
        document = decode_code(text)
    else:
        try:
            document = _json(text)
        except ValueError:
            raise InvitationInvalid(LocalText("membership.reason.file_not_invitation")) from None
    return check_invitation(document, now=now)


def _json(text: str) -> object:
    """A JSON value; ValueError for text that is not JSON, holds a number of over 20 digits or
    NaN (an invitation has none), or nests more deeply than ``json`` parses (RecursionError)."""
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _short_int(digits: str) -> int:
    if len(digits) > 20:  # int() takes up to 4,300 digits; no field of an invitation is near 20
        raise ValueError("a number is too long")
    return int(digits)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


_DECODER = json.JSONDecoder(parse_int=_short_int, parse_constant=_no_constant)


def _operator_of(document: object) -> str:
    operator = document.get("operator") if isinstance(document, dict) else None
    if not isinstance(operator, str):
        raise InvitationInvalid(LocalText("membership.reason.no_operator"))
    return operator


def _check_parts(doc: dict) -> None:
    try:
        check_space_id(doc["space"])
    except ValueError:
        raise InvitationInvalid(LocalText("membership.reason.bad_space_id", doc["space"])) from None
    broker, token, join = doc["broker"], doc["token"], doc["join"]
    if set(broker) != {"host", "port", "tls_ca_pem"} or not isinstance(broker["host"], str) \
            or type(broker["port"]) is not int or not 0 < broker["port"] < 65536 \
            or not isinstance(broker["tls_ca_pem"], (str, type(None))):
        raise InvitationInvalid(LocalText("membership.reason.bad_broker"))
    if set(token) != {"id", "secret"} or not all(isinstance(v, str) and v for v in token.values()):
        raise InvitationInvalid(LocalText("membership.reason.bad_token"))
    if set(join) != {"username", "password"} or join.get("username") != join_username(token["id"]) \
            or not isinstance(join["password"], str):
        raise InvitationInvalid(LocalText("membership.reason.bad_join_account"))
    try:
        parse_rfc3339(doc["expires"])
        parse_rfc3339(doc["issued"])
    except ValueError:
        raise InvitationInvalid(LocalText("membership.reason.bad_dates")) from None


def _reason(error: ApplianceError) -> LocalText | ApplianceError:
    """What is wrong with the invitation, said in the reader's language when it is shown."""
    if isinstance(error, BadSignature):
        return LocalText("membership.reason.signature_mismatch")
    return error


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if not all(c.isalnum() or c in "-_" for c in text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
