"""`dsnode run` and `dsnode operator run`: a node that runs until it is told to stop.

The node is hosted by :class:`appliance.host.NodeHost` (the desktop app uses the same host), so
while it runs every other `dsnode` command works against it through the control API. For
systemd: ``READY=1`` once the node serves, ``WATCHDOG=1`` at half the watchdog interval,
``STOPPING=1`` on SIGTERM; SIGHUP reads the configuration file again (the log level now; the
rest at the next start).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

from appliance import i18n
from appliance.errors import ApplianceError
from appliance.host import NodeHost
from appliance.host.host import event_line
from appliance.settings import Settings, load_settings

log = logging.getLogger(__name__)
t = i18n.t


class JsonLines(logging.Formatter):
    """One JSON object per log line (journald and log shippers read them as they are)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def notify(state: str) -> bool:
    """Tell systemd (``Type=notify``) how the service is; nothing happens outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(state.encode("utf-8"))
        return True
    except OSError as e:
        log.warning("could not notify systemd: %s", e)
        return False


def watchdog_interval() -> float | None:
    """Half the interval systemd's watchdog expects a ping in (``WATCHDOG_USEC``), if it is on."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.5, int(usec) / 2e6)
    except ValueError:
        return None


def json_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonLines())


def serve(node, settings: Settings, *, config_path=None, tcp_port: int | None = None,
          started: Callable[[NodeHost], None] | None = None) -> int:
    """Host ``node`` until SIGTERM or SIGINT; returns 0 when it stopped cleanly."""
    from edge.cli import command_runner
    from edge.cmd_resource import apply_allowed_roots

    apply_allowed_roots(node)

    stop, reload, wake = threading.Event(), threading.Event(), threading.Event()

    def on(flag: threading.Event):
        return lambda *_: (flag.set(), wake.set())

    handlers = {signal.SIGTERM: on(stop), signal.SIGINT: on(stop), signal.SIGHUP: on(reload)}
    previous = {s: signal.signal(s, h) for s, h in handlers.items()}
    host = NodeHost(node, runner=command_runner(node, settings), tcp_port=tcp_port, watch=settings.watch,
                    interfaces=settings.interfaces)
    log_stream = sys.stderr  # the daemon's own; a command served for a client writes to that client
    node.bus.subscribe(lambda event: print(json.dumps(event_line(event), ensure_ascii=False, default=str),
                                           file=log_stream, flush=True))
    try:
        host.start()
        try:
            if started is not None:
                started(host)
            notify(f"READY=1\nSTATUS={t('run.started', len(node.sync.spaces()), lang='en')}\nMAINPID={os.getpid()}")
            ping = watchdog_interval()
            last_ping = time.monotonic()
            while not stop.is_set():
                wake.wait(min(1.0, ping or 1.0))
                wake.clear()
                if ping and time.monotonic() - last_ping >= ping * 0.9:
                    notify("WATCHDOG=1")
                    last_ping = time.monotonic()
                if reload.is_set():
                    reload.clear()
                    _reload(settings, config_path)
            notify("STOPPING=1")
        finally:
            host.stop()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return 0


def _reload(settings: Settings, config_path) -> None:
    try:
        fresh = load_settings({"home": settings.home}, config_path=config_path)
    except Exception as e:  # noqa: BLE001 - a bad edit of the file must not stop the node; it is logged
        text = e.message("en") if isinstance(e, ApplianceError) else type(e).__name__
        log.error("the configuration was not reloaded: %s", text)
        return
    logging.getLogger().setLevel(fresh.log_level)
    log.warning("configuration reloaded (log level %s)", fresh.log_level)
