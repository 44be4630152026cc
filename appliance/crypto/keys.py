"""Ed25519 node keys, did:key identifiers and base58btc multibase.

A node's identity is an Ed25519 key; its id is the ``did:key`` of the public key (multicodec
``0xed 0x01`` prefix, base58btc multibase, so it always starts ``did:key:z6Mk``). The same key,
converted with libsodium's Ed25519→X25519 mapping, receives sealed (encrypted) messages.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import base58
import nacl.exceptions
import nacl.public
import nacl.signing

from appliance.errors import BadSignature, LocalText, MalformedDid

DID_KEY_PREFIX = "did:key:"
ED25519_PUB_MULTICODEC = b"\xed\x01"
SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
MAX_MULTIBASE = 512
"""Longest multibase text decoded by default: base58 decoding takes time quadratic in the length,
and the values we decode (a 34-byte multicodec key, a 64-byte signature) are under 90 characters."""
MAX_DID = 256
"""Longest did:key (or its DID URL ``did:key:z…#z…``, 105 characters) looked at; longer is a
MalformedDid, refused before any decoding."""


# --- multibase (base58btc only) --------------------------------------------------------------


def multibase_encode(data: bytes) -> str:
    """Encode ``data`` as base58btc multibase: ``"z"`` followed by base58 (Bitcoin alphabet)."""
    return "z" + base58.b58encode(bytes(data)).decode("ascii")


def multibase_decode(text: str, max_length: int = MAX_MULTIBASE) -> bytes:
    """Decode a base58btc multibase string (``"z…"``) of at most ``max_length`` characters.

    Raises ``ValueError`` naming the problem for any other multibase prefix, a character
    outside the base58 alphabet, or a longer text (refused before any decoding).
    """
    if not isinstance(text, str) or not text:
        raise ValueError("multibase value must be a non-empty string")
    if len(text) > max_length:
        raise ValueError(f"multibase value is longer than {max_length} characters")
    if text[0] != "z":
        raise ValueError(
            f"multibase prefix {text[0]!r} is not supported; only base58btc ('z') is"
        )
    try:
        return base58.b58decode(text[1:])
    except ValueError as exc:  # includes non-ASCII input (UnicodeEncodeError)
        raise ValueError(f"multibase value is not valid base58btc: {exc}") from None


# --- did:key ---------------------------------------------------------------------------------


def did_from_public_key(public_key: bytes) -> str:
    """``did:key:z…`` of a 32-byte Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"Ed25519 public key must be {PUBLIC_KEY_SIZE} bytes")
    return DID_KEY_PREFIX + multibase_encode(ED25519_PUB_MULTICODEC + bytes(public_key))


def public_key_from_did(did: str) -> bytes:
    """The 32-byte Ed25519 public key inside a did:key.

    Accepts ``did:key:z6Mk…`` and the DID URL of its verification method
    ``did:key:z6Mk…#z6Mk…`` (the fragment must repeat the key). Raises ``MalformedDid`` for
    anything else.
    """
    if not isinstance(did, str) or not did.startswith(DID_KEY_PREFIX) or len(did) > MAX_DID:
        raise MalformedDid(_shown(did))
    return _public_key_of(did)


def _shown(value: object) -> str:
    """A value that is not a did, short enough to name in a message."""
    text = value if isinstance(value, str) else type(value).__name__
    return text if len(text) <= 80 else text[:80] + "…"


@lru_cache(maxsize=4096)
def _public_key_of(did: str) -> bytes:
    """The decoding of :func:`public_key_from_did` (cached: every message names its sender's did;
    a did that does not decode raises, and errors are not cached)."""
    ident, hash_sign, fragment = did[len(DID_KEY_PREFIX):].partition("#")
    if hash_sign and fragment != ident:
        raise MalformedDid(did)
    try:
        raw = multibase_decode(ident)
    except ValueError:
        raise MalformedDid(did) from None
    if not raw.startswith(ED25519_PUB_MULTICODEC):
        raise MalformedDid(did)
    public_key = raw[len(ED25519_PUB_MULTICODEC):]
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise MalformedDid(did)
    return public_key


def box_public_key_from_did(did: str) -> nacl.public.PublicKey:
    """X25519 public key (for sealed boxes) derived from the Ed25519 key of a did:key."""
    verify_key = nacl.signing.VerifyKey(public_key_from_did(did))
    try:
        return verify_key.to_curve25519_public_key()
    except nacl.exceptions.CryptoError:  # not a valid curve point
        raise MalformedDid(did) from None


# --- signatures ------------------------------------------------------------------------------


def verify(public_key: bytes, message: bytes, signature: bytes, what: str | LocalText = "message") -> None:
    """Check an Ed25519 detached signature; raise ``BadSignature(what)`` unless it is valid."""
    if (
        not isinstance(signature, bytes)
        or len(signature) != SIGNATURE_SIZE
        or not isinstance(public_key, bytes)
        or len(public_key) != PUBLIC_KEY_SIZE
    ):
        raise BadSignature(what)
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        raise BadSignature(what) from None


class SigningKey:
    """An Ed25519 private key. Its ``repr`` shows only the DID, never key material."""

    def __init__(self, key: nacl.signing.SigningKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key for a 32-byte seed (the form we store)."""
        if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
            raise ValueError(f"Ed25519 seed must be {SEED_SIZE} bytes")
        return cls(nacl.signing.SigningKey(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte seed. Secret: store it encrypted, never log it."""
        return bytes(self._key)

    @cached_property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return bytes(self._key.verify_key)

    @cached_property
    def did(self) -> str:
        """``did:key:z6Mk…`` of this key."""
        return did_from_public_key(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """64-byte detached Ed25519 signature of ``message``."""
        return self._key.sign(message).signature

    def box_private_key(self) -> nacl.public.PrivateKey:
        """X25519 private key derived from this key (libsodium's Ed25519→X25519 conversion)."""
        return self._key.to_curve25519_private_key()

    def __repr__(self) -> str:
        return f"SigningKey({self.did})"
