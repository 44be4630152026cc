"""Two network namespaces joined by a veth pair, for tests that need a real link between two hosts.

``netns_pair`` makes namespaces ``dsn<pid>x<n>a`` and ``…b``, a veth pair between them with
10.77.0.1/24 (side 0) and 10.77.0.2/24 (side 1), both links and the namespaces' loopbacks up.
Nothing of the machine's own network is touched: multicast sent in a namespace goes only over its
veth end. :meth:`NetnsPair.python` runs a Python child inside a namespace; :meth:`NetnsPair.run`
runs a function in a thread of this process moved into a namespace (``setns`` moves one thread,
and the threads and child processes it starts stay there: a node started in it serves, connects
and runs its broker there). The children are killed and the namespaces (and with them the veth
pair) deleted after the test, failed or not.

Making namespaces needs root (CAP_SYS_ADMIN) and ``ip`` from iproute2; elsewhere the fixture skips
with the reason, except under CI (``CI`` set in the environment), where it fails instead.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ADDRESSES = ("10.77.0.1", "10.77.0.2")
PREFIX = 24
CLONE_NEWNET = 0x40000000
_count = itertools.count()


class NetnsUnavailable(Exception):
    """Namespaces cannot be made here (the message says why)."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {done.stderr.strip() or done.returncode}")


class NetnsPair:
    """Two namespaces and the veth pair between them; :meth:`close` removes everything."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise NetnsUnavailable("network namespaces exist only on Linux")
        if os.geteuid() != 0:
            raise NetnsUnavailable("making network namespaces needs root")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("the `ip` command (iproute2) is not installed")
        tag = f"dsn{os.getpid()}x{next(_count)}"
        self.names = (f"{tag}a", f"{tag}b")
        self.links = (f"v{tag[3:]}a"[:15], f"v{tag[3:]}b"[:15])  # interface names are at most 15 bytes
        self.addresses = ADDRESSES
        self._made: list[str] = []
        self._children: list[subprocess.Popen] = []
        try:
            for name in self.names:
                _ip("netns", "add", name)
                self._made.append(name)
            _ip("link", "add", self.links[0], "netns", self.names[0], "type", "veth",
                "peer", "name", self.links[1], "netns", self.names[1])
            for name, link, address in zip(self.names, self.links, self.addresses, strict=True):
                _ip("-n", name, "addr", "add", f"{address}/{PREFIX}", "dev", link)
                _ip("-n", name, "link", "set", link, "up")
                _ip("-n", name, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def command(self, side: int, *argv: str) -> list[str]:
        """``argv`` run inside namespace ``side`` (0 or 1)."""
        return ["ip", "netns", "exec", self.names[side], *argv]

    def python(self, side: int, *args: str, **popen: object) -> subprocess.Popen:
        """``python args…`` (this interpreter, the repository as working directory) inside namespace
        ``side``; killed at :meth:`close` if still running. ``popen`` goes to :class:`subprocess.Popen`."""
        popen.setdefault("cwd", ROOT)
        child = subprocess.Popen(self.command(side, sys.executable, *args), **popen)  # noqa: S603
        self._children.append(child)
        return child

    def run(self, side: int, function, *args):
        """``function(*args)`` in a new thread inside namespace ``side``; its result (or its exception)."""
        out: dict = {}

        def inside() -> None:
            try:
                fd = os.open(f"/run/netns/{self.names[side]}", os.O_RDONLY)
                try:
                    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns failed")
                finally:
                    os.close(fd)
                out["value"] = function(*args)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                out["error"] = e

        thread = threading.Thread(target=inside, name=f"netns-{side}")
        thread.start()
        thread.join()
        if "error" in out:
            raise out["error"]
        return out.get("value")

    def close(self) -> None:
        for child in self._children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=10)
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
        self._children.clear()
        while self._made:  # deleting a namespace deletes its end of the veth pair, and so the pair
            name = self._made.pop()
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


@pytest.fixture
def netns_pair():
    """A :class:`NetnsPair`, removed after the test; skips where namespaces cannot be made."""
    try:
        pair = NetnsPair()
    except NetnsUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"network namespaces are required in CI: {exc}")
        pytest.skip(str(exc))
    try:
        yield pair
    finally:
        pair.close()
