"""A real Mosquitto broker for tests, on a free 127.0.0.1 port in a temporary folder.

``Mosquitto(tmp_dir)`` writes an anonymous loopback config; ``Mosquitto(tmp_dir, config_text=…)``
uses a given config instead (for example one made by ``dsnode operator broker-config``). In a given
config the placeholders ``{port}`` and ``{dir}`` are replaced with the chosen port and the broker's
folder (plain text replacement, not ``str.format``, so other braces are left alone); or choose the
port first with ``free_port()`` and pass it as ``port=``. The broker's persistence file and log live
in the folder, so ``restart()`` keeps sessions and retained messages like a real broker would.

Never touches the system broker on 1883: every instance gets its own port.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = "/usr/sbin/mosquitto"
DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def anonymous_config(port: int, folder: Path, *, persistence: bool = True) -> str:
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "max_inflight_messages 0",
        "max_queued_messages 100000",
    ]
    if persistence:
        lines += ["persistence true", f"persistence_location {folder}/"]
    return "\n".join(lines) + "\n"


class Mosquitto:
    """One mosquitto process. ``.port``, ``.host``, ``.start()``, ``.stop()``, ``.restart()``, ``.kill()``."""

    host = "127.0.0.1"

    def __init__(
        self,
        tmp_dir: Path | str,
        *,
        config_text: str | None = None,
        port: int | None = None,
        persistence: bool = True,
        start: bool = True,
        ready_timeout: float = 10.0,
    ) -> None:
        self.dir = Path(tmp_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        if config_text is None:
            config_text = anonymous_config(self.port, self.dir, persistence=persistence)
        else:
            config_text = config_text.replace("{port}", str(self.port)).replace("{dir}", str(self.dir))
        self.config_path = self.dir / "mosquitto.conf"
        self.log_path = self.dir / "mosquitto.log"
        self.config_path.write_text(self._with_housekeeping(config_text), encoding="utf-8")
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        if start:
            self.start()

    def _with_housekeeping(self, text: str) -> str:
        lines = text.rstrip("\n").splitlines()
        keys = {line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")}
        extra = []
        if "log_dest" not in keys:
            extra += [f"log_dest file {self.log_path}", "log_type error", "log_type warning",
                      "log_type notice", "log_type information", "connection_messages true"]
        if os.geteuid() == 0 and "user" not in keys:
            # mosquitto drops root privileges to "mosquitto", which cannot read our tmp folder
            extra.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        return "\n".join(lines + extra) + "\n"

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        if self.running:
            return
        self._stderr = open(self.dir / "mosquitto.stderr", "ab")  # noqa: SIM115 - closed in _close
        self._proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"mosquitto did not accept connections on {self.port}:\n{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop cleanly (SIGTERM: mosquitto saves its persistence file), SIGKILL if it hangs."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close(proc)

    def kill(self) -> None:
        """SIGKILL: no persistence save, connections just vanish."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close(proc)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _close(self, proc: subprocess.Popen) -> None:
        del proc
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._proc = None

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.log_path, self.dir / "mosquitto.stderr"):
            if path.exists():
                text += path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Mosquitto:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Mosquitto(port={self.port}, running={self.running})"
