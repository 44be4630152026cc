"""Delivering a file under a contract, end to end: from the provider's store to the consumer's
vault over the direct path (loopback), against a plain unencrypted TCP copy of the same bytes in
the same run; the relay path through mosquitto beside it; and the process's peak memory growth.

Two member nodes of a space (an operator, mosquitto on a free port, auto-admission) in this
process; the provider registers a file of random bytes (referenced, so registration only hashes
it), makes a product of it and the consumer's contract is finalized by a rule. Timed: from
`transfers.request` to COMPLETED at the consumer (the provider reads the file, keeps the payload in
its vault and hashes it; the consumer fetches the chunks over the encrypted channel, keeps each
encrypted in staging, then puts the object into its vault). The baseline sends the same file over
one plain TCP connection on loopback and reads it into a buffer.
"""

from __future__ import annotations

import os
import resource
import socket
import tempfile
import threading
import time
from pathlib import Path

from bench.harness import Result, rnd
from bench.spaces import SPACE, Space, wait_for

DESCRIPTION = "a file from provider store to consumer vault (direct and relay) vs a plain TCP copy; peak RSS growth"


def _seconds(a: str | None, b: str | None) -> float | None:
    """Seconds between two RFC 3339 stamps of a transfer's timeline (prepare, then move)."""
    from datetime import datetime

    if not a or not b:
        return None
    parse = lambda x: datetime.fromisoformat(x.replace("Z", "+00:00"))  # noqa: E731
    return round((parse(b) - parse(a)).total_seconds(), 2)


def _plain_tcp(path: Path) -> float:
    size = path.stat().st_size
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    got = [0]

    def receive() -> None:
        conn, _ = server.accept()
        with conn:
            buf = bytearray(1 << 20)
            while got[0] < size:
                n = conn.recv_into(buf)
                if not n:
                    break
                got[0] += n

    t = threading.Thread(target=receive)
    t.start()
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as c, open(path, "rb") as f:
        c.sendfile(f)
    t.join()
    server.close()
    return size / (time.perf_counter() - start)


_phases: list[tuple] = []


def _deliver(provider, consumer, path: Path, *, relay: bool, rows_title: str) -> float:
    r = provider.resources.register(str(path), title=rows_title, kind="file").resource
    product = provider.products.create(title=rows_title, resource_ids=[r.id],
                                       offers=[provider.products.offer_from_template("free-trial")])
    provider.products.request_listing(product.id, SPACE)
    wait_for(lambda: [e for e in consumer.sync.catalog(SPACE) if e.dataset_id == product.id], 60, "the entry")
    provider.contracts.add_rule({"dataset": product.id})
    cid = consumer.contracts.request(SPACE, product.id)
    wait_for(lambda: consumer.contracts.get(cid).state == "FINALIZED", 60, "FINALIZED")
    start = time.perf_counter()
    tid = consumer.transfers.request(cid, path="relay" if relay else "auto")
    wait_for(lambda: consumer.transfers.get(tid).state in ("COMPLETED", "TERMINATED"), 3600, "the delivery")
    seconds = time.perf_counter() - start
    steps = consumer.transfers.timeline(tid)
    stamps = {st.state_after: st.ts for st in steps}
    _phases.append((stamps.get("REQUESTED"), stamps.get("STARTED"), stamps.get("COMPLETED")))
    if consumer.transfers.get(tid).state != "COMPLETED":
        raise RuntimeError(f"the delivery ended {consumer.transfers.get(tid).reason}")
    return path.stat().st_size / seconds


def run(quick: bool, say) -> Result:
    size = (256 if quick else 2048) * 1024 * 1024
    relay_size = (32 if quick else 256) * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="dsnode-bench-delivery-") as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        big, small = data / "big.bin", data / "relay.bin"
        for path, n in ((big, size), (small, relay_size)):
            with open(path, "wb") as f:
                block = os.urandom(1 << 20)
                for _ in range(n >> 20):
                    f.write(block)
        plain = max(_plain_tcp(big) for _ in range(2))
        say(f"plain TCP copy over loopback: {plain / 1e6:.0f} MB/s")
        space = Space(root / "space")
        try:
            provider, consumer = space.member("provider"), space.member("consumer")
            provider.resources.allowed_roots = [data]
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

            def approve() -> None:
                while not stop.is_set():
                    for req in space.operator.operator.listings("pending"):
                        space.operator.operator.approve_listing(req.id)
                    stop.wait(0.2)

            stop = threading.Event()
            approver = threading.Thread(target=approve, daemon=True)
            approver.start()
            try:
                direct = _deliver(provider, consumer, big, relay=False, rows_title="big")
                say(f"direct delivery: {direct / 1e6:.0f} MB/s ({size >> 20} MiB)")
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
                relayed = _deliver(provider, consumer, small, relay=True, rows_title="relay")
                say(f"relay through mosquitto: {relayed / 1e6:.1f} MB/s ({relay_size >> 20} MiB)")
            finally:
                stop.set()
                approver.join()
        finally:
            space.close()
    ratio = direct / plain
    return Result(
        figures={"direct_mb_s": rnd(direct / 1e6, 1), "relay_mb_s": rnd(relayed / 1e6, 1),
                 "peak_rss_growth_mb": rnd(peak, 1)},
        baseline={"plain_tcp_mb_s": rnd(plain / 1e6, 1)},
        ratio={"direct_vs_plain_tcp": rnd(ratio), "relay_vs_goal": rnd(relayed / 100e6)},
        target={"direct": ">= 0.5x plain TCP", "relay": ">= 100 MB/s", "memory": "< 64 MB growth per process"},
        met={"direct": ratio >= 0.5, "relay": relayed >= 100e6, "memory": peak < 64},
        notes={"bytes": size, "relay_bytes": relay_size, "both_nodes_in_one_process": True,
               "phases_s": [_seconds(a, b) for a, b, _ in _phases[:1]] + [_seconds(b, c) for _, b, c in _phases[:1]],
               "stages": "provider: read + vault encrypt + SHA-256; channel AES-GCM; consumer: staging + vault"},
    )
