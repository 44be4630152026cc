"""One node of a benchmark space in a process of its own, as deployed (every node is its own
program, `dsnode run`, on its own machine): ``python -m bench.node_process HOME LABEL`` opens the
store made by :class:`bench.spaces.Space`, starts sync, prints ``ready`` and serves until its
standard input closes or it gets SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from appliance.node import Node
from bench.node_settings import TIMERS, passphrase


def main(home: str, label: str) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    node = Node.open(Path(home), passphrase(label), sync_timers=TIMERS)
    try:
        node.start()
        print("ready", flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()
    finally:
        node.close()
    return 0


class NodeProcess:
    """The parent's handle on a node serving in its own process."""

    def __init__(self, home: Path, label: str) -> None:
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.node_process", str(home), label], cwd=root,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"node {label} did not start in its own process")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
