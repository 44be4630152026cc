"""The embedded broker alone in a process, for `bench broker`: it imports nothing but the broker,
so the memory measured is the broker's (``python -m bench.broker_serve DOCUMENT PORT``; prints
``ready``, runs until SIGTERM; ``DSNODE_BENCH_PROFILE=FILE`` writes a cProfile of its thread)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from appliance.net.broker import EmbeddedBroker


def _serve(document_path: str, port: int) -> None:
    """The embedded broker in this process until SIGTERM (the benchmark measures its memory alone)."""
    broker = EmbeddedBroker(json.loads(Path(document_path).read_text()))
    broker.start(port=port)
    if os.environ.get("DSNODE_BENCH_PROFILE"):  # where the broker's thread spends its time
        import cProfile

        profile = cProfile.Profile()
        broker._loop.call_soon_threadsafe(profile.enable)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    if os.environ.get("DSNODE_BENCH_PROFILE"):
        broker._loop.call_soon_threadsafe(profile.disable)
        time.sleep(0.2)
        profile.dump_stats(os.environ["DSNODE_BENCH_PROFILE"])
    broker.stop()
    os._exit(0)


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
