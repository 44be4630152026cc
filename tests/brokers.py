"""A real Mosquitto broker for tests, on a free 127.0.0.1 port in a temporary folder.

``Mosquitto(tmp_dir)`` writes an anonymous loopback config; ``Mosquitto(tmp_dir, config_text=…)``
uses a given config instead (for example one made by ``dsnode operator broker-config``). In a given
config the placeholders ``{port}`` and ``{dir}`` are replaced with the chosen port and the broker's
folder (plain text replacement, not ``str.format``, so other braces are left alone); or choose the
port first with ``free_port()`` and pass it as ``port=``. The broker's persistence file and log live
in the folder, so ``restart()`` keeps sessions and retained messages like a real broker would.

Never touches the system broker on 1883: every instance gets its own port. The process itself is
:class:`edge.broker_process.BrokerProcess`, as for the demo.
"""

from __future__ import annotations

from pathlib import Path

from edge.broker_process import BrokerProcess, free_port, write_config

MOSQUITTO = "/usr/sbin/mosquitto"
DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
VERBOSE = ("error", "warning", "notice", "information")  # what the log keeps, for log_tail() in a failure

__all__ = ["DYNSEC_PLUGIN", "MOSQUITTO", "Mosquitto", "anonymous_config", "free_port"]


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


class Mosquitto(BrokerProcess):
    """One mosquitto process in ``tmp_dir``.
    ``.port``, ``.host``, ``.start()``, ``.stop()``, ``.restart()``, ``.kill()``."""

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
        folder = Path(tmp_dir)
        port = port or free_port()
        if config_text is None:
            config_text = anonymous_config(port, folder, persistence=persistence)
        super().__init__(MOSQUITTO, write_config(folder, config_text, port), port, ready_timeout=ready_timeout,
                         log_types=VERBOSE, start=start)
