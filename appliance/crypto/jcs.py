"""Canonical JSON bytes (RFC 8785, JSON Canonicalization Scheme) for everything we sign or hash.

Integers must fit in an IEEE double exactly (±(2**53 − 1)), because RFC 8785 serialises numbers
the way JavaScript does and a peer in another language would read a bigger integer differently.
Callers send such values (byte counts of huge files, nanosecond clocks) as strings.
"""

from __future__ import annotations

import hashlib

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1


def canonical(obj: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``obj``.

    Raises ``ValueError`` for an integer outside ±(2**53 − 1) (naming where it is), and for
    anything else RFC 8785 cannot represent (NaN, infinities, non-string keys, bytes ...).
    """
    _check_integers(obj)
    return rfc8785.dumps(obj)


def sha256(data: bytes) -> bytes:
    """SHA-256 digest of ``data`` (32 bytes)."""
    return hashlib.sha256(data).digest()


def _check_integers(obj: object) -> None:
    """Raise ``ValueError`` if any integer inside ``obj`` is outside the safe range.

    Walks with an explicit stack so a deeply nested document from a peer cannot exhaust the
    Python recursion limit here.
    """
    stack: list[tuple[str, object]] = [("$", obj)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                raise ValueError(
                    f"integer {value} at {path} is outside ±(2**53 − 1) and cannot be put in "
                    "canonical JSON; send it as a string"
                )
        elif isinstance(value, dict):
            stack.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
