"""The CLI and a running node: forward a command line to it, or run one inside it.

When a node runs (the daemon or the desktop app), it holds the store. `dsnode <command>` then
sends its command line to the running node's control API, and the running node runs the very
same handler against its own open node, with the caller's working folder and language; the
output comes back as it is written and the exit code is the handler's. So a command gives the
same output and exit code whether a node runs or not.

Inside the running node, each request runs in its own thread: what the handler prints goes to
that request (a per-thread stdout/stderr), and ``open_node`` hands out the running node, on which
``close``, ``start`` and ``stop`` do nothing (the host owns its lifecycle).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import io
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from appliance import i18n

# how a command uses the store (``set_defaults(store_use=…)``; default "shared")
SHARED = "shared"  # runs in the running node when one runs, else opens the store itself
EXCLUSIVE = "exclusive"  # needs the store to itself: refused while a node runs (init, restore, run, …)
INDEPENDENT = "independent"  # does not use this node's store (the demo)

_live: contextvars.ContextVar[object | None] = contextvars.ContextVar("dsnode_live_node", default=None)


def live_node() -> object | None:
    """The running node, when the current command runs inside it."""
    return _live.get()


class Borrowed:
    """The running node as a command sees it: everything but its lifecycle."""

    def __init__(self, node) -> None:
        object.__setattr__(self, "_node", node)

    def __getattr__(self, name: str):
        return getattr(self._node, name)

    def start(self) -> None:  # already running
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Borrowed:
        return self

    def __exit__(self, *exc) -> None:
        pass


# --- output per request ----------------------------------------------------------------------


class _Sink(io.TextIOBase):
    def __init__(self, write: Callable[[str, str], None], stream: str) -> None:
        self._write, self._stream = write, stream

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self._write(self._stream, text)
        return len(text)


class _Router(io.TextIOBase):
    """Installed as sys.stdout/sys.stderr in a running node: a thread serving a command writes to
    that command's client; every other thread writes where the process always wrote."""

    def __init__(self, fallback, which: str) -> None:
        self._fallback, self._which = fallback, which

    def _target(self):
        sinks = getattr(_ROUTES, "sinks", None)
        return sinks[self._which] if sinks else self._fallback

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._target().isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self):  # noqa: D401 - what print() and argparse read
        return getattr(self._target(), "encoding", "utf-8")

    def fileno(self) -> int:
        return self._fallback.fileno()


_ROUTES = threading.local()
_install_lock = threading.Lock()


def _install_routers() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout, "out")
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr, "err")


@contextlib.contextmanager
def _captured(write: Callable[[str, str], None]) -> Iterator[None]:
    _install_routers()
    _ROUTES.sinks = {"out": _Sink(write, "out"), "err": _Sink(write, "err")}
    try:
        yield
    finally:
        _ROUTES.sinks = None


class PathText(str):
    """An argument that is a path or something else (a URL, an invitation code): ``type=PathText``."""


def absolute_paths(args: argparse.Namespace, cwd: str) -> None:
    """Paths the user typed are relative to where they typed them, not to the daemon's folder."""
    base = Path(cwd)
    for name, value in vars(args).items():
        if isinstance(value, PathText):
            if value and "://" not in value and not Path(value).is_absolute() and _exists(base / value):
                setattr(args, name, PathText(base / value))
        elif isinstance(value, Path) and not value.is_absolute():
            setattr(args, name, base / value)
        elif isinstance(value, list) and any(isinstance(v, Path) for v in value):
            setattr(args, name, [base / v if isinstance(v, Path) and not v.is_absolute() else v for v in value])


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long to be a file (an invitation code), a NUL
        return False


def runner(node, settings, execute: Callable[[argparse.Namespace, object], int],
           parse: Callable[[list[str]], argparse.Namespace]):
    """The host's command runner: parse ``argv`` as the CLI does and run its handler on ``node``."""
    borrowed = Borrowed(node)

    def run(argv: list[str], cwd: str, lang: str, write: Callable[[str, str], None]) -> int:
        with i18n.using_lang(lang), _captured(write):
            token = _live.set(borrowed)
            try:
                try:
                    args = parse(argv)
                except SystemExit as e:  # argparse said what is wrong (or printed the help)
                    return e.code if isinstance(e.code, int) else 2
                absolute_paths(args, cwd)
                return execute(args, settings.with_(lang=lang))
            finally:
                _live.reset(token)

    return run
