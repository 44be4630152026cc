"""Canonical JSON bytes (RFC 8785, JSON Canonicalization Scheme) for everything we sign or hash.

Integers must fit in an IEEE double exactly (±(2**53 − 1)), because RFC 8785 serialises numbers
the way JavaScript does and a peer in another language would read a bigger integer differently.
Callers send such values (byte counts of huge files, nanosecond clocks) as strings.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1


def canonical(obj: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``obj``.

    Raises ``ValueError`` for an integer outside ±(2**53 − 1) (naming where it is), and for
    anything else RFC 8785 cannot represent (NaN, infinities, non-string keys, bytes, lone
    surrogates, nesting deeper than the interpreter can recurse ...).
    """
    try:
        if _check_integers(obj):
            try:
                return _FAST.encode(obj).encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: RFC 8785 refuses it below, naming it
                pass
        return rfc8785.dumps(obj)
    except RecursionError:  # both encoders recurse; received values are bounded far below this
        raise ValueError("the value is nested too deeply to be put in canonical JSON") from None


# For values made only of dicts with BMP string keys, lists, strings, safe integers, booleans and
# null, the stdlib encoder below produces exactly the RFC 8785 bytes: same separators, keys sorted
# by code point (equal to UTF-16 order inside the BMP), the same escapes (\b \f \n \r \t \" \\
# and lowercase \u00xx for other control characters), everything else as raw UTF-8, integers in
# decimal. Floats and non-BMP keys take the reference implementation. tests/unit/test_jcs.py checks
# the two agree on many random documents.
_FAST = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)


def sha256(data: bytes) -> bytes:
    """SHA-256 digest of ``data`` (32 bytes)."""
    return hashlib.sha256(data).digest()


def _check_integers(obj: object) -> bool:
    """Raise ``ValueError`` if any integer inside ``obj`` is outside the safe range.

    Returns whether ``obj`` qualifies for the fast encoder (see ``_FAST``). Walks with an explicit
    stack so a deeply nested document from a peer cannot exhaust the Python recursion limit here.
    The walk keeps no paths (it runs on every message signed or verified); only when it finds an
    unsafe integer does :func:`_unsafe_integer_path` walk again to name where it is.
    """
    fast = True
    stack: list[Any] = [obj]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        value = pop()
        t = type(value)
        if t is str or value is None or t is bool:
            continue
        if t is int:
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                _raise_unsafe(obj)
        elif t is dict:
            for key, item in value.items():
                if type(key) is not str or (not key.isascii() and any(ord(ch) > 0xFFFF for ch in key)):
                    fast = False
                push(item)
        elif t is list or t is tuple:
            extend(value)
        elif isinstance(value, (bool, str)):  # subclasses
            fast = False
        elif isinstance(value, int):  # an int subclass (IntEnum) may print differently
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                _raise_unsafe(obj)
            fast = False
        elif isinstance(value, dict):
            fast = False
            for item in value.values():
                push(item)
        elif isinstance(value, (list, tuple)):
            fast = False
            extend(value)
        else:
            fast = False
    return fast


def _raise_unsafe(obj: object) -> None:
    """Raise the ``ValueError`` naming the first unsafe integer in ``obj`` (walk order as before)."""
    stack: list[tuple[str, object]] = [("$", obj)]
    while stack:
        path, value = stack.pop()
        if value is None or isinstance(value, (bool, str)):
            continue
        if isinstance(value, int):
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                shown = value if value.bit_length() < 4000 else "of thousands of digits"  # str() limit
                raise ValueError(
                    f"integer {shown} at {path} is outside ±(2**53 − 1) and cannot be put in "
                    "canonical JSON; send it as a string"
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                stack.append((f"{path}.{key}", item))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
