"""Run a broker for the demo or for `dsnode operator run --embedded-broker`.

A mosquitto for the demo (on a free loopback port, in a folder, stopped and cleaned up after), or,
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

from appliance.errors import BrokerConfigError
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


def _server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise BrokerConfigError(f"cannot use {cert} and {key} for TLS: {e}") from None
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
        raise BrokerConfigError(f"the embedded broker cannot listen on {listener.host}:{listener.port} ({e})") from None
    return broker
