"""A node in a child process, for the SIGKILL tests: ``python -m tests.integration.sync_child ROLE HOME [ARGS]``.

``send HOME TO COUNT``: start sync, then send COUNT pings to TO, one transaction each, printing
``sent N`` after each commit. ``receive HOME``: start sync and apply pings until killed, printing
``applied N`` as they commit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from appliance.clock import SystemClock
from appliance.domain.sync import MessageApplied
from appliance.node import Node
from tests.integration.sync_helpers import FAST, PASSPHRASE, SPACE, record_pings


def main(argv: list[str]) -> None:
    role, home = argv[0], Path(argv[1])
    node = Node.open(home, PASSPHRASE, clock=SystemClock(), sync_timers=FAST)
    if role == "send":
        to, count = argv[2], int(argv[3])
        node.start()
        for n in range(count):
            node.store.db.write(lambda conn, n=n: node.sync.send(conn, SPACE, to=to, type="test.ping", body={"n": n}))
            print(f"sent {n + 1}", flush=True)
            time.sleep(0.002)
        time.sleep(3600)
    elif role == "receive":
        applied = record_pings(node)
        node.bus.subscribe(lambda e: print(f"applied {len(applied())}", flush=True), MessageApplied)
        node.start()
        print("ready", flush=True)
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1:])
