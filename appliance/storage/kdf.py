"""Passphrase → store key (Argon2id), and the plaintext header that records how.

The header is a small JSON file beside the database (``node.header``). It holds nothing secret:
the format tag and version, the KDF name and cost parameters, and the 16-byte salt. Whoever has
the passphrase and the header can derive the 32-byte raw SQLCipher key; without the header (its
salt) the database cannot be opened, so backups carry a copy of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nacl.pwhash.argon2id as argon2id

from appliance.errors import StoreCorrupt, StoreFromFuture, StoreNotFound, store_reason
from appliance.storage.durable import write_bytes_atomically

log = logging.getLogger(__name__)

KEY_BYTES = 32
SALT_BYTES = argon2id.SALTBYTES  # 16

HEADER_FORMAT = "dsnode-store"
HEADER_VERSION = 1
KDF_NAME = "argon2id13"

# Upper bounds accepted from a header file: a damaged or hostile header must not make us
# allocate gigabytes or spin for minutes before failing.
MAX_OPSLIMIT = 64
MAX_MEMLIMIT = 4 * 1024**3


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost: ``opslimit`` passes over ``memlimit`` bytes of memory."""

    opslimit: int
    memlimit: int

    def __post_init__(self) -> None:
        if not argon2id.OPSLIMIT_MIN <= self.opslimit <= MAX_OPSLIMIT:
            raise ValueError(f"Argon2id opslimit {self.opslimit} outside [{argon2id.OPSLIMIT_MIN}, {MAX_OPSLIMIT}]")
        if not argon2id.MEMLIMIT_MIN <= self.memlimit <= MAX_MEMLIMIT:
            raise ValueError(f"Argon2id memlimit {self.memlimit} outside [{argon2id.MEMLIMIT_MIN}, {MAX_MEMLIMIT}]")

    @classmethod
    def default(cls) -> KdfParams:
        """libsodium's MODERATE cost (3 passes, 256 MiB): about 0.4 s on a 2-core box."""
        return cls(opslimit=argon2id.OPSLIMIT_MODERATE, memlimit=argon2id.MEMLIMIT_MODERATE)

    @classmethod
    def fast(cls) -> KdfParams:
        """The libsodium minimum (1 pass, 8 KiB). For tests and benchmarks only: no protection."""
        return cls(opslimit=argon2id.OPSLIMIT_MIN, memlimit=argon2id.MEMLIMIT_MIN)


def derive_key(passphrase: bytes, salt: bytes, params: KdfParams) -> bytes:
    """The 32-byte store key for ``passphrase`` (Argon2id v1.3, ``salt`` of 16 bytes)."""
    if not isinstance(passphrase, bytes | bytearray):
        raise TypeError("passphrase must be bytes")
    if len(salt) != SALT_BYTES:
        raise ValueError(f"salt must be {SALT_BYTES} bytes")
    return argon2id.kdf(KEY_BYTES, bytes(passphrase), salt, opslimit=params.opslimit, memlimit=params.memlimit)


@dataclass(frozen=True)
class StoreHeader:
    """The plaintext header of a store: how to turn its passphrase into its key."""

    opslimit: int
    memlimit: int
    salt: bytes = field(repr=False)
    format: str = HEADER_FORMAT
    version: int = HEADER_VERSION
    kdf: str = KDF_NAME
    # a short MAC of a fixed text under the store key, one per key the database may have (two
    # only while a passphrase change is under way): when the database's first page does not
    # authenticate, it tells a damaged page (the key is right) from a wrong passphrase
    keychecks: tuple[str, ...] = ()

    @classmethod
    def new(cls, params: KdfParams) -> StoreHeader:
        return cls(opslimit=params.opslimit, memlimit=params.memlimit, salt=secrets.token_bytes(SALT_BYTES))

    @property
    def params(self) -> KdfParams:
        return KdfParams(opslimit=self.opslimit, memlimit=self.memlimit)

    def derive_key(self, passphrase: bytes) -> bytes:
        return derive_key(passphrase, self.salt, self.params)

    def to_json(self) -> dict:
        data = {**asdict(self), "salt": self.salt.hex(), "keychecks": list(self.keychecks)}
        if not self.keychecks:
            del data["keychecks"]  # as stores made before the key check
        return data

    def knows(self, key: bytes) -> bool | None:
        """Is ``key`` the store key (None: the header cannot say)?"""
        if not self.keychecks:
            return None
        mine = keycheck(key)
        return any(hmac.compare_digest(mine, k) for k in self.keychecks)

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), sort_keys=True) + "\n").encode("ascii")

    @classmethod
    def from_json(cls, data: object) -> StoreHeader:
        """Parse and validate; raises ValueError (with a readable reason) or StoreFromFuture."""
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
        if data.get("format") != HEADER_FORMAT:
            raise ValueError(f"it is not a dsnode store header (format {data.get('format')!r})")
        version = data.get("version")
        if not isinstance(version, int) or version < 1:
            raise ValueError(f"its version {version!r} is not valid")
        if version > HEADER_VERSION:
            raise StoreFromFuture(f"header {version}", f"header {HEADER_VERSION}")
        if data.get("kdf") != KDF_NAME:
            raise ValueError(f"it names an unknown key derivation {data.get('kdf')!r}")
        ops, mem, salt = data.get("opslimit"), data.get("memlimit"), data.get("salt")
        if not (isinstance(ops, int) and isinstance(mem, int) and isinstance(salt, str)):
            raise ValueError("opslimit, memlimit or salt is missing or of the wrong type")
        try:
            salt_bytes = bytes.fromhex(salt)
        except ValueError:
            raise ValueError("the salt is not hexadecimal") from None
        if len(salt_bytes) != SALT_BYTES:
            raise ValueError(f"the salt is {len(salt_bytes)} bytes, not {SALT_BYTES}")
        KdfParams(ops, mem)  # bounds check, raises ValueError
        checks = data.get("keychecks", [])
        if (not isinstance(checks, list) or len(checks) > 4
                or not all(isinstance(c, str) and len(c) == 32 for c in checks)):
            raise ValueError("keychecks is not a short list of key checks")
        return cls(opslimit=ops, memlimit=mem, salt=salt_bytes, keychecks=tuple(checks))


def keycheck(key: bytes) -> str:
    return hmac.new(key, b"dsnode store key check", hashlib.sha256).hexdigest()[:32]


def read_header(path: Path) -> StoreHeader:
    """Read ``path``; StoreNotFound if absent, StoreCorrupt if it is not a valid store header."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StoreNotFound(path) from None
    if len(raw) > 64 * 1024:
        raise StoreCorrupt(path, store_reason("key_header_too_large"))
    try:
        return StoreHeader.from_json(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise StoreCorrupt(path, store_reason("key_header_not_json")) from None
    except ValueError as e:
        raise StoreCorrupt(path, store_reason("key_header_invalid", e)) from None


def write_header(path: Path, header: StoreHeader) -> None:
    """Write ``path`` atomically (temp file, fsync, rename, fsync directory), mode 0600."""
    write_bytes_atomically(Path(path), header.to_bytes())
