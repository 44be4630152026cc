"""Run a broker for the demo or for `dsnode operator run --embedded-broker`.

A mosquitto for the demo (on a free loopback port, in a folder, stopped and cleaned up after; the
tests and the benchmarks start theirs with the same :class:`BrokerProcess`), or,
when mosquitto is not installed, the embedded pure-Python broker (:mod:`appliance.net.broker`) in
this process, started from the dynamic-security document the operator writes, so it enforces the
same accounts and rules. ``DSNODE_MOSQUITTO`` overrides the search: ``off`` hides mosquitto (the
embedded broker is used), a path names the binary.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from appliance.errors import BrokerConfigError, LocalText
from appliance.net.broker import EmbeddedBroker
from appliance.net.broker.limits import BrokerLimits
from appliance.operator import broker_config as bc

CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
ENV = "DSNODE_MOSQUITTO"


def find_mosquitto() -> str | None:
    override = os.environ.get(ENV, "").strip()
    if override.lower() in ("off", "none", "0", "no"):
        return None
    for name in ((override,) if override else CANDIDATES):
        path = shutil.which(name) or (name if os.path.isfile(name) and os.access(name, os.X_OK) else None)
        if path:
            return path
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path | str, text: str, port: int) -> Path:
    """Write ``text`` to ``<folder>/mosquitto.conf`` with ``{port}`` and ``{dir}`` replaced by ``port``
    and the folder (plain text replacement, so other braces are left alone); return the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mosquitto.conf"
    path.write_text(text.replace("{port}", str(port)).replace("{dir}", str(folder)), encoding="utf-8")
    return path


class BrokerProcess:
    """``mosquitto -c <folder>/mosquitto.conf`` listening on 127.0.0.1:``port``: started at once
    (unless ``start=False``) and ready when the port takes connections; ``stop()`` ends it (SIGTERM,
    then SIGKILL), ``kill()`` without letting it save, ``restart()``.

    The config is completed for running from a private folder: a log file next to it (unless it
    names ``log_dest``; ``log_types`` picks what is logged, mosquitto's defaults when empty) and,
    as root, ``user root`` (mosquitto would switch to a "mosquitto" user that cannot read the folder).
    mosquitto's own output goes to ``mosquitto.stderr`` there; :meth:`log_tail` shows both.
    """

    host = "127.0.0.1"

    def __init__(self, binary: str, config: Path, port: int, *, ready_timeout: float = 10.0,
                 log_types: tuple[str, ...] = (), start: bool = True) -> None:
        self.binary, self.config_path, self.port, self.ready_timeout = binary, Path(config), port, ready_timeout
        self.dir = self.config_path.parent
        self.log_path = self.dir / "mosquitto.log"
        self.config_path.write_text(self._completed(self.config_path.read_text(encoding="utf-8"), log_types),
                                    encoding="utf-8")
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        if start:
            self.start()

    def _completed(self, text: str, log_types: tuple[str, ...]) -> str:
        lines = text.rstrip("\n").splitlines()
        keys = {line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")}
        if "log_dest" not in keys:
            lines += [f"log_dest file {self.log_path}", *(f"log_type {t}" for t in log_types)]
        if os.geteuid() == 0 and "user" not in keys:
            lines.append(f"user {pwd.getpwuid(0).pw_name}")
        return "\n".join(lines) + "\n"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        if self.running:
            return
        self._stderr = open(self.dir / "mosquitto.stderr", "ab")  # noqa: SIM115 - closed in _closed
        self._proc = subprocess.Popen([self.binary, "-c", str(self.config_path)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._closed()
                raise RuntimeError(f"mosquitto exited with code {code}:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"mosquitto did not accept connections on port {self.port}:\n{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop cleanly (SIGTERM: mosquitto saves its persistence file), SIGKILL if it hangs."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._closed()

    def kill(self) -> None:
        """SIGKILL: no persistence save, connections just vanish."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._closed()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _closed(self) -> None:
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

    def __enter__(self) -> BrokerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port}, running={self.running})"


def _server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise BrokerConfigError(LocalText("broker.reason.tls_unusable", cert, key, str(e))) from None
    return ctx


def start_embedded_broker(node, listener: bc.ListenerConfig, folder: Path | None = None, *,
                          limits: BrokerLimits | None = None) -> EmbeddedBroker:
    """Start the embedded broker for ``node``'s space on ``listener`` and return it (running).

    The operator writes its broker configuration as for mosquitto's dynamic security (which also
    has it create every member's and open invitation's account again once it runs) and the broker
    starts from that document. ``folder`` keeps the written files; without it they go to a
    temporary folder removed at once (the broker holds everything in memory).
    Raises BrokerConfigError if it cannot listen there.
    """
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="dsnode-embedded-broker-") as tmp:
            return start_embedded_broker(node, listener, Path(tmp) / "broker", limits=limits)
    node.operator.write_broker_config(folder, listener, mode="dynsec", plugin_path=bc.EMBEDDED_PLUGIN, limits=limits)
    document = bc.read_dynsec_file(Path(folder) / "dynamic-security.json")
    tls = _server_tls(listener.tls_cert, listener.tls_key) if listener.tls_cert is not None else None
    broker = EmbeddedBroker(document, ssl_context=tls, limits=limits)
    try:
        broker.start(listener.host, listener.port)
    except OSError as e:
        raise BrokerConfigError(LocalText("broker.reason.cannot_listen", f"{listener.host}:{listener.port}",
                                          str(e))) from None
    return broker
