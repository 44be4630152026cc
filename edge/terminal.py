"""Bold and colour only for a person at a terminal.

Escape codes written to a file, a pipe or journald are noise (``^[[1m`` in a log), so styling is on
only when the stream is a terminal, ``NO_COLOR`` is unset or empty (https://no-color.org) and
``TERM`` is not ``dumb``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

BOLD, RESET = "\033[1m", "\033[0m"


def styled(stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Whether escape codes may be written to ``stream`` (standard output by default)."""
    stream = sys.stdout if stream is None else stream
    env = os.environ if env is None else env
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def bold(text: str, stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> str:
    """``text`` in bold when ``stream`` is a terminal that wants styling, else unchanged."""
    return f"{BOLD}{text}{RESET}" if styled(stream, env) else text
