"""A node in a child process for the contract SIGKILL tests:
``python -m tests.integration.contract_child HOME LABEL [DATASET]``.

Opens the node, prints ``state ID STATE`` for every negotiation now and on every change (the bus
event fires after the change has committed, so a kill right after it cannot take the change back),
requests DATASET if given and this node has no negotiation yet, and runs until killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from appliance.domain.contracts import NegotiationChanged
from appliance.node import Node
from tests.spaces import SPACE, TIMERS


def main(argv: list[str]) -> None:
    home, label = Path(argv[0]), argv[1]
    node = Node.open(home, b"passphrase " + label.encode(), sync_timers=TIMERS)
    node.bus.subscribe(lambda e: print(f"state {e.negotiation_id} {e.state}", flush=True), NegotiationChanged)
    for n in node.contracts.list():
        print(f"state {n.id} {n.state}", flush=True)
    node.start()
    if len(argv) > 2 and not node.contracts.list():
        node.contracts.request(SPACE, argv[2])
    print("ready", flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1:])
