"""Where a headless node gets its store passphrase.

Every source yields passphrase *bytes*; the store applies Argon2id to them the same way whatever
their origin, so a box can move from a typed passphrase to a key file or a systemd credential
holding the same text. None of these objects shows its secret in ``repr()``.

Files (key file, systemd credential) lose exactly one trailing newline, so ``echo secret > f``
and a typed ``secret`` are the same passphrase.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from appliance.errors import KeySourceError, LocalText

log = logging.getLogger(__name__)

DEFAULT_ENV_VAR = "DSNODE_PASSPHRASE"
MAX_KEY_FILE_BYTES = 64 * 1024


class KeySource(Protocol):
    def read(self) -> bytes: ...


def _strip_newline(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data


def _nonempty(data: bytes, what: object) -> bytes:
    if not data:
        raise KeySourceError(LocalText("key.reason.empty", what))
    return data


class Passphrase:
    """A passphrase the user typed (or a test supplied)."""

    __slots__ = ("_secret",)

    def __init__(self, text: str | bytes) -> None:
        self._secret = text.encode("utf-8") if isinstance(text, str) else bytes(text)

    def read(self) -> bytes:
        return _nonempty(self._secret, LocalText("key.what.passphrase"))

    def __repr__(self) -> str:
        return "Passphrase(<hidden>)"


def _read_private_file(path: Path, what: object) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeySourceError(LocalText("key.reason.missing", what, path)) from None
    except OSError as e:
        raise KeySourceError(LocalText("key.reason.unreadable", what, path, e.strerror)) from None
    if not stat.S_ISREG(st.st_mode):
        raise KeySourceError(LocalText("key.reason.not_a_file", what, path))
    if os.name != "nt" and st.st_mode & 0o077:
        raise KeySourceError(LocalText("key.reason.readable_by_others", what, path))
    if st.st_size > MAX_KEY_FILE_BYTES:
        raise KeySourceError(LocalText("key.reason.too_large", what, path))
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeySourceError(LocalText("key.reason.unreadable", what, path, e.strerror)) from None
    return _nonempty(_strip_newline(data), LocalText("key.what.path", what, path))


class KeyFile:
    """A file holding the passphrase; it must be private to its owner (mode 0600 or stricter)."""

    __slots__ = ("path",)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def read(self) -> bytes:
        return _read_private_file(self.path, LocalText("key.what.key_file"))

    def __repr__(self) -> str:
        return f"KeyFile({str(self.path)!r})"


class EnvVar:
    """An environment variable holding the passphrase (e.g. DSNODE_PASSPHRASE)."""

    __slots__ = ("name", "_environ")

    def __init__(self, name: str = DEFAULT_ENV_VAR, environ: Mapping[str, str] | None = None) -> None:
        self.name = name
        self._environ = environ

    def read(self) -> bytes:
        env = os.environ if self._environ is None else self._environ
        value = env.get(self.name)
        if value is None:
            raise KeySourceError(LocalText("key.reason.env_unset", self.name))
        return _nonempty(os.fsencode(value), LocalText("key.what.env", self.name))

    def __repr__(self) -> str:
        return f"EnvVar({self.name!r})"


class SystemdCredential:
    """A systemd credential (``LoadCredential=`` / ``LoadCredentialEncrypted=`` in the unit)."""

    __slots__ = ("name", "_environ")

    def __init__(self, name: str, environ: Mapping[str, str] | None = None) -> None:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"invalid systemd credential name {name!r}")
        self.name = name
        self._environ = environ

    def read(self) -> bytes:
        env = os.environ if self._environ is None else self._environ
        directory = env.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise KeySourceError(LocalText("key.reason.no_credentials", self.name))
        return _read_private_file(Path(directory) / self.name, LocalText("key.what.credential"))

    def __repr__(self) -> str:
        return f"SystemdCredential({self.name!r})"
