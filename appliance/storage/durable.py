"""Durable file operations: a file is either absent, or complete and on disk, after a crash.

The pattern everywhere: write a temporary file beside the target, fsync it, rename it over the
target, fsync the directory so the rename itself survives a power cut.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def temp_name(target: Path, tag: str = "tmp") -> Path:
    """A fresh hidden name in the target's directory (so a rename onto the target is atomic)."""
    return target.with_name(f".{target.name}.{tag}-{secrets.token_hex(4)}")


def fsync_dir(path: Path) -> None:
    """Make renames and creations inside ``path`` durable (a no-op where directories cannot be opened)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(src: Path, dst: Path) -> None:
    """Rename ``src`` over ``dst`` atomically and durably (same directory or filesystem)."""
    os.replace(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def write_atomically(target: Path, fill: Callable[[BinaryIO], object], mode: int = PRIVATE_FILE) -> None:
    """Create ``target`` with the bytes ``fill(f)`` writes; readers never see a partial file."""
    tmp = temp_name(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomically(target: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    write_atomically(target, lambda f: f.write(data), mode)


def make_private_dir(path: Path) -> bool:
    """Create ``path`` (and parents) with mode 0700; returns False if it already existed."""
    if path.is_dir():
        return False
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    fsync_dir(path.parent)
    return True
