"""Where a running node's control socket lives, worked out the same way by the node and the CLI."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

SOCKET_NAME = "control.sock"
TOKEN_NAME = "control.token"
PID_NAME = "control.pid"
_UNIX_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS: stay below both


def socket_path(home: Path) -> Path:
    """``<home>/control.sock``, or, when that path is too long for a Unix socket, a per-user
    folder under the temp directory (mode 0700) with a name derived from the home's path."""
    home = Path(home).absolute()
    path = home / SOCKET_NAME
    if len(os.fsencode(path)) <= _UNIX_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"dsnode-{os.geteuid()}" / f"{digest}.sock"


def token_path(home: Path) -> Path:
    return Path(home).absolute() / TOKEN_NAME
