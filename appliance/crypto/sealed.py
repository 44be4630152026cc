"""Encrypt bytes to a node, knowing only its did:key.

Format (version 1)::

    0x01 || SealedBox(X25519 key of the recipient's did:key).encrypt(0x01 || plaintext)

The version byte is repeated inside the ciphertext so it is authenticated too: changing the
outer byte cannot make a reader treat the ciphertext as another format. A sealed box is
anonymous (the sender is not identified); the signed envelope around it says who sent it.

The X25519 keys are derived once, not per message: the box for a recipient's did:key is kept (a
bounded cache, keyed by the DID), and so is our own private box for each ``SigningKey`` object (for
as long as that object lives). Every sealed box still uses a fresh ephemeral key.
"""

from __future__ import annotations

import threading
import weakref
from functools import lru_cache

import nacl.exceptions
import nacl.public

from appliance.crypto.keys import SigningKey, box_public_key_from_did
from appliance.errors import LocalText, MalformedMessage

VERSION = 1
_HEADER = bytes([VERSION])


_opening: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # SigningKey -> its SealedBox
_opening_lock = threading.Lock()


@lru_cache(maxsize=1024)
def _sealing_box(recipient_did: str) -> nacl.public.SealedBox:
    return nacl.public.SealedBox(box_public_key_from_did(recipient_did))  # MalformedDid is not cached


def _opening_box(key: SigningKey) -> nacl.public.SealedBox:
    with _opening_lock:
        box = _opening.get(key)
        if box is None:
            box = _opening[key] = nacl.public.SealedBox(key.box_private_key())
        return box


def seal(plaintext: bytes, recipient_did: str) -> bytes:
    """Encrypt ``plaintext`` so only the holder of ``recipient_did``'s key can read it."""
    return _HEADER + _sealing_box(recipient_did).encrypt(_HEADER + bytes(plaintext))


def unseal(ciphertext: bytes, key: SigningKey) -> bytes:
    """Decrypt data sealed to ``key``'s did:key.

    Raises ``MalformedMessage`` for an unknown format version, data sealed to another node,
    or data changed in transit.
    """
    if not ciphertext:
        raise MalformedMessage(LocalText("crypto.reason.sealed_empty"))
    if ciphertext[0] != VERSION:
        raise MalformedMessage(LocalText("crypto.reason.sealed_version", ciphertext[0]))
    try:
        inner = _opening_box(key).decrypt(bytes(ciphertext[1:]))
    except nacl.exceptions.CryptoError:
        raise MalformedMessage(LocalText("crypto.reason.sealed_cannot_open")) from None
    if inner[:1] != _HEADER:
        raise MalformedMessage(LocalText("crypto.reason.sealed_inner_version"))
    return inner[1:]
