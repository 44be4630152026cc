"""Run a mosquitto for the demo: on a free loopback port, in a folder, stopped and cleaned up after."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name) or (name if os.path.isfile(name) and os.access(name, os.X_OK) else None)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    """``mosquitto -c <folder>/mosquitto.conf``; ``stop()`` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, binary: str, config: Path, port: int, *, ready_timeout: float = 10.0) -> None:
        self.port = port
        text = config.read_text(encoding="utf-8")
        if os.geteuid() == 0 and "\nuser " not in text:
            # as root, mosquitto switches to the "mosquitto" user, which cannot read a private temp folder
            text += f"user {pwd.getpwuid(0).pw_name}\n"
        text += f"log_dest file {config.parent / 'mosquitto.log'}\n"
        config.write_text(text, encoding="utf-8")
        self._proc = subprocess.Popen([binary, "-c", str(config)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with code {self._proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
