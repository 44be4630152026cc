"""Signed tree heads: C2SP tlog-checkpoint bodies carried in C2SP signed notes (Ed25519).

A signed note is a text ending in a newline, a blank line, then one or more signature lines::

    dsnode.example/node-1
    42
    ub4D8q2tpbrR0pWcLvmw6YcO6QNiBR4X0kpqNoNTvhA=

    — dsnode.example/node-1 BASE64(key id (4 bytes) || Ed25519 signature (64 bytes))

The signature is over the UTF-8 text (including its final newline). A key is named by
``(name, key id)`` with ``key id = SHA-256(name || "\\n" || 0x01 || public key)[:4]``; its
verifier key is written ``name+hex(key id)+base64(0x01 || public key)``. Signatures from unknown
keys are ignored, so a witness can add its co-signature beside the node's own.

Input from peers is untrusted: bad structure raises :class:`MalformedMessage`, a signature that
does not verify raises :class:`BadSignature`. Bad arguments from our own code raise ValueError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from appliance.errors import BadSignature, LocalText, MalformedMessage

SIG_TYPE_ED25519 = 0x01
KEY_ID_SIZE = 4
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
ROOT_HASH_SIZE = 32
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16
MAX_TREE_SIZE = 2**64 - 1
EM_DASH = "\u2014"

_SIZE_RE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")

Verifiers = (
    Mapping[tuple[str, bytes], bytes | VerifyKey]
    | Callable[[str, bytes], bytes | VerifyKey | None]
)

__all__ = [
    "Checkpoint",
    "VerifierKey",
    "Verifiers",
    "add_signature",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_verifier_key",
    "sign_note",
    "verifier_key",
    "verifiers_from_keys",
]


# --- checkpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin (the log's name), tree size and RFC 6962 root hash."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extensions", tuple(self.extensions))
        problem = _checkpoint_problem(self.origin, self.size, self.root_hash, self.extensions)
        if problem:
            raise ValueError(str(problem))

    def body(self) -> str:
        """The checkpoint note text, every line ending in a newline."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n" + "".join(f"{e}\n" for e in self.extensions)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Read a checkpoint note text strictly; raise MalformedMessage saying what is wrong."""
        if not isinstance(body, str) or not body.endswith("\n"):
            raise MalformedMessage(LocalText("crypto.reason.checkpoint_no_newline"))
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedMessage(LocalText("crypto.reason.checkpoint_too_few_lines"))
        origin, size_text, root_text, *extensions = lines
        if len(size_text) > 20 or not _SIZE_RE.fullmatch(size_text):
            raise MalformedMessage(LocalText("crypto.reason.checkpoint_size_not_number", repr(size_text)))
        root = _b64decode(root_text, LocalText("crypto.reason.the_checkpoint_root"))
        problem = _checkpoint_problem(origin, int(size_text), root, tuple(extensions))
        if problem:
            raise MalformedMessage(problem)
        return cls(origin, int(size_text), root, tuple(extensions))


def _checkpoint_problem(origin: str, size: int, root: bytes, extensions: tuple) -> LocalText | None:
    """Why these checkpoint fields are invalid, or None."""
    name_problem = _name_problem(origin, LocalText("crypto.reason.the_checkpoint_origin"))
    if name_problem:
        return name_problem
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_TREE_SIZE:
        return LocalText("crypto.reason.checkpoint_size_range", repr(size))
    if not isinstance(root, bytes) or len(root) != ROOT_HASH_SIZE:
        return LocalText("crypto.reason.checkpoint_root_size", ROOT_HASH_SIZE)
    for line in extensions:
        if not isinstance(line, str) or not line or "\n" in line or _CONTROL_RE.search(line):
            return LocalText("crypto.reason.checkpoint_extension")
    return None


def open_checkpoint(note: str, verifiers: Verifiers) -> tuple[Checkpoint, list[str]]:
    """Verify a signed checkpoint note and parse its body; return it with the verified signers.

    The caller decides which signers it needs (the log's own key, a witness quorum) from the
    returned names; checking the origin against the expected log is also the caller's job.
    """
    text, signers = open_note(note, verifiers)
    return Checkpoint.parse(text), signers


# --- keys ------------------------------------------------------------------------------------


class VerifierKey(NamedTuple):
    name: str
    key_id: bytes
    public_key: bytes


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte id of an Ed25519 key: SHA-256(name || "\\n" || 0x01 || public key)[:4]."""
    _require_name(name)
    public_key = _public_bytes(public_key)
    data = name.encode("utf-8") + b"\n" + bytes([SIG_TYPE_ED25519]) + public_key
    return hashlib.sha256(data).digest()[:KEY_ID_SIZE]


def verifier_key(name: str, public_key: bytes) -> str:
    """The text form of a verifier key: ``name+hex(key id)+base64(0x01 || public key)``."""
    public_key = _public_bytes(public_key)
    encoded = base64.b64encode(bytes([SIG_TYPE_ED25519]) + public_key).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> VerifierKey:
    """Read a verifier key; raise MalformedMessage if it is not a well-formed Ed25519 key."""
    parts = vkey.split("+", 2) if isinstance(vkey, str) else []
    if len(parts) != 3:
        raise MalformedMessage(LocalText("crypto.reason.verifier_key_form"))
    name, id_hex, key_b64 = parts
    problem = _name_problem(name, LocalText("crypto.reason.the_verifier_key_name"))
    if problem:
        raise MalformedMessage(problem)
    if not re.fullmatch(r"[0-9a-f]{8}", id_hex):
        raise MalformedMessage(LocalText("crypto.reason.verifier_key_id_form", repr(id_hex)))
    key = _b64decode(key_b64, LocalText("crypto.reason.the_verifier_key"))
    if len(key) != 1 + PUBLIC_KEY_SIZE or key[0] != SIG_TYPE_ED25519:
        raise MalformedMessage(LocalText("crypto.reason.verifier_key_not_ed25519"))
    public_key = key[1:]
    if key_id(name, public_key).hex() != id_hex:
        raise MalformedMessage(LocalText("crypto.reason.verifier_key_id_mismatch", id_hex))
    return VerifierKey(name, bytes.fromhex(id_hex), public_key)


def verifiers_from_keys(vkeys: Iterable[str]) -> dict[tuple[str, bytes], bytes]:
    """The ``verifiers`` mapping for :func:`open_note` from verifier key texts."""
    return {(v.name, v.key_id): v.public_key for v in map(parse_verifier_key, vkeys)}


# --- signed notes ----------------------------------------------------------------------------


class _SignatureLine(NamedTuple):
    name: str
    key_id: bytes
    signature: bytes


def sign_note(text: str, name: str, seed_or_signing_key: bytes | SigningKey) -> str:
    """Sign ``text`` (which must end in a newline) as ``name``; return the signed note."""
    problem = _text_problem(text, LocalText("crypto.reason.the_note_text"))
    if problem:
        raise ValueError(str(problem))
    return text + "\n" + _signature_line(text, name, seed_or_signing_key)


def add_signature(note: str, name: str, seed_or_signing_key: bytes | SigningKey) -> str:
    """Append ``name``'s signature to a signed note, as a witness co-signs a checkpoint.

    This only checks the note's structure: verify the existing signatures (and, for a
    checkpoint, consistency with what you saw before) with :func:`open_note` first. Adding a
    signature the note already carries returns the note unchanged.
    """
    text, lines = _parse_note(note)
    line = _signature_line(text, name, seed_or_signing_key)
    mine = _parse_signature_line(line[:-1])
    for existing in lines:
        if (existing.name, existing.key_id) == (mine.name, mine.key_id):
            if existing.signature == mine.signature:
                return note
            raise BadSignature(LocalText("crypto.reason.note_from", name))
    if len(lines) >= MAX_SIGNATURES:
        raise MalformedMessage(LocalText("crypto.reason.note_full", MAX_SIGNATURES))
    return note + line


def open_note(note: str, verifiers: Verifiers) -> tuple[str, list[str]]:
    """Verify a signed note; return its text and the names of the known keys that signed it.

    ``verifiers`` maps ``(name, key id)`` to an Ed25519 public key, or is a callable
    ``(name, key id) -> public key or None``. Signatures from unknown keys are ignored; a known
    key's signature that fails, or no known signature at all, raises BadSignature.
    """
    text, lines = _parse_note(note)
    message = text.encode("utf-8")
    signers = []
    for line in lines:
        public_key = _lookup(verifiers, line.name, line.key_id)
        if public_key is None:
            continue
        verify_key = VerifyKey(_public_bytes(public_key))
        try:
            if len(line.signature) != SIGNATURE_SIZE:
                raise BadSignatureError("wrong length")
            verify_key.verify(message, line.signature)
        except BadSignatureError:
            raise BadSignature(LocalText("crypto.reason.note_from", line.name)) from None
        signers.append(line.name)
    if not signers:
        names = ", ".join(sorted({line.name for line in lines}))
        raise BadSignature(LocalText("crypto.reason.note_unknown_signers", names))
    return text, signers


def _signature_line(text: str, name: str, seed_or_signing_key: bytes | SigningKey) -> str:
    _require_name(name)
    signing_key = _signing_key(seed_or_signing_key)
    kid = key_id(name, signing_key.verify_key.encode())
    signature = signing_key.sign(text.encode("utf-8")).signature
    return f"{EM_DASH} {name} {base64.b64encode(kid + signature).decode('ascii')}\n"


def _parse_note(note: str) -> tuple[str, list[_SignatureLine]]:
    """Split a signed note into its text and signature lines, checking the structure."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage(LocalText("crypto.reason.signed_note_not_utf8")) from None
    if not isinstance(note, str) or not note.endswith("\n"):
        raise MalformedMessage(LocalText("crypto.reason.signed_note_no_newline"))
    # control characters, lone surrogates (a str from JSON may hold them)
    problem = _text_problem(note, LocalText("crypto.reason.the_signed_note"))
    if problem:
        raise MalformedMessage(problem)
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedMessage(LocalText("crypto.reason.signed_note_no_blank_line"))
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise MalformedMessage(LocalText("crypto.reason.signed_note_no_signatures"))
    raw_lines = block[:-1].split("\n")
    if len(raw_lines) > MAX_SIGNATURES:
        raise MalformedMessage(LocalText("crypto.reason.signed_note_too_many", MAX_SIGNATURES))
    lines = [_parse_signature_line(raw) for raw in raw_lines]
    if len({(line.name, line.key_id) for line in lines}) != len(lines):
        raise MalformedMessage(LocalText("crypto.reason.signed_note_same_key"))
    return text, lines


def _parse_signature_line(raw: str) -> _SignatureLine:
    if not raw.startswith(EM_DASH + " "):
        raise MalformedMessage(LocalText("crypto.reason.signature_line_start"))
    name, _, encoded = raw[2:].partition(" ")
    problem = _name_problem(name, LocalText("crypto.reason.a_signature_key_name"))
    if problem:
        raise MalformedMessage(problem)
    blob = _b64decode(encoded, LocalText("crypto.reason.the_signature_from", name))
    if len(blob) <= KEY_ID_SIZE:
        raise MalformedMessage(LocalText("crypto.reason.signature_too_short", name))
    return _SignatureLine(name, blob[:KEY_ID_SIZE], blob[KEY_ID_SIZE:])


def _lookup(verifiers: Verifiers, name: str, kid: bytes) -> bytes | VerifyKey | None:
    if callable(verifiers):
        return verifiers(name, kid)
    return verifiers.get((name, kid))


# --- small checks ----------------------------------------------------------------------------


def _name_problem(name: object, subject: LocalText) -> LocalText | None:
    """Why ``name`` cannot be a key name or origin (``subject`` says which), or None."""
    if not isinstance(name, str) or not name:
        return LocalText("crypto.reason.name_empty", subject)
    if "+" in name or any(c.isspace() for c in name) or _CONTROL_RE.search(name):
        return LocalText("crypto.reason.name_bad_characters", subject, repr(name))
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return LocalText("crypto.reason.name_not_text", subject, repr(name))
    return None


def _require_name(name: str) -> None:
    problem = _name_problem(name, LocalText("crypto.reason.the_key_name"))
    if problem:
        raise ValueError(str(problem))


def _text_problem(text: object, subject: LocalText) -> LocalText | None:
    if not isinstance(text, str) or not text.endswith("\n"):
        return LocalText("crypto.reason.text_no_newline", subject)
    if _CONTROL_RE.search(text):
        return LocalText("crypto.reason.text_control_characters", subject)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return LocalText("crypto.reason.text_not_text", subject)
    return None


def _b64decode(text: str, what: LocalText) -> bytes:
    """Strict standard base64: right alphabet, padding, and canonical trailing bits."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise MalformedMessage(LocalText("crypto.reason.not_base64", what)) from None
    if base64.b64encode(data).decode("ascii") != text:
        raise MalformedMessage(LocalText("crypto.reason.not_canonical_base64", what))
    return data


def _signing_key(key: bytes | SigningKey) -> SigningKey:
    if isinstance(key, SigningKey):
        return key
    if isinstance(key, bytes) and len(key) == 32:
        return SigningKey(key)
    raise ValueError("a signing key must be a nacl SigningKey or a 32-byte seed")


def _public_bytes(key: bytes | VerifyKey) -> bytes:
    if isinstance(key, VerifyKey):
        return key.encode()
    if isinstance(key, bytes) and len(key) == PUBLIC_KEY_SIZE:
        return key
    raise ValueError(f"an Ed25519 public key must be {PUBLIC_KEY_SIZE} bytes")
