"""Delivering a file under a contract, end to end: from the provider's store to the consumer's
vault over the direct path (loopback), against a plain unencrypted TCP copy of the same bytes in
the same run; the relay path through mosquitto beside it; and each node's peak memory growth.

Two member nodes of a space (an operator, mosquitto on a free port, auto-admission). The provider
registers two files of random bytes (referenced, so registration only hashes them), makes a product
of each, and the consumer's contracts are finalized by a rule. Then each node is its own program,
as deployed: the provider and the operator serve from processes of their own
(:mod:`bench.node_process`), the consumer is this process. Timed: from `transfers.request` to
COMPLETED at the consumer (the provider reads the referenced file and hashes it, then serves each
chunk from it, checked against the manifest; the consumer fetches the chunks over the encrypted
channel, keeps each encrypted in staging and writes it into its vault object as it arrives, which
is fsynced at the end). The baseline sends the same file over one plain TCP
connection on loopback (``sendfile``) and reads it into a buffer.

Memory: the growth of each node's peak RSS (VmHWM) over its RSS before the deliveries.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from bench.harness import Result, rnd
from bench.spaces import SPACE, Space, wait_for

DESCRIPTION = "a file from provider store to consumer vault (direct and relay) vs a plain TCP copy; peak RSS growth"


def _seconds(a: str | None, b: str | None) -> float | None:
    """Seconds between two RFC 3339 stamps of a transfer's timeline."""
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


def _memory_mb(pid: int | str = "self") -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def _contract(space: Space, provider, consumer, path: Path, title: str) -> str:
    """A listed product of ``path`` and the consumer's finalized contract for it."""
    r = provider.resources.register(str(path), title=title, kind="file").resource
    product = provider.products.create(title=title, resource_ids=[r.id],
                                       offers=[provider.products.offer_from_template("free-trial")])
    provider.products.request_listing(product.id, SPACE)
    request = wait_for(lambda: [q for q in space.operator.operator.listings("pending") if q.dataset_id == product.id],
                       60, "the listing request")[0]
    space.operator.operator.approve_listing(request.id)
    wait_for(lambda: [e for e in consumer.sync.catalog(SPACE) if e.dataset_id == product.id], 60, "the entry")
    provider.contracts.add_rule({"dataset": product.id})
    cid = consumer.contracts.request(SPACE, product.id)
    wait_for(lambda: consumer.contracts.get(cid).state == "FINALIZED", 60, "FINALIZED")
    return cid


def _deliver(consumer, cid: str, size: int, *, relay: bool) -> tuple[float, list]:
    """Bytes per second from the request to COMPLETED, and the (prepare, move) seconds."""
    start = time.perf_counter()
    tid = consumer.transfers.request(cid, path="relay" if relay else "auto")
    wait_for(lambda: consumer.transfers.get(tid).state in ("COMPLETED", "TERMINATED"), 3600, "the delivery")
    seconds = time.perf_counter() - start
    if consumer.transfers.get(tid).state != "COMPLETED":
        raise RuntimeError(f"the delivery ended {consumer.transfers.get(tid).reason}")
    stamps = {st.state_after: st.ts for st in consumer.transfers.timeline(tid)}
    phases = [_seconds(stamps.get("REQUESTED"), stamps.get("STARTED")),
              _seconds(stamps.get("STARTED"), stamps.get("COMPLETED"))]
    return size / seconds, phases


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size >> 24):
            f.write(os.urandom(1 << 24))


def run(quick: bool, say) -> Result:
    size = (256 if quick else 2048) * 1024 * 1024
    relay_size = (32 if quick else 256) * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="dsnode-bench-delivery-") as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        big, small = data / "big.bin", data / "relay.bin"
        _write_random(big, size)
        _write_random(small, relay_size)
        plain = max(_plain_tcp(big) for _ in range(2))
        say(f"plain TCP copy over loopback: {plain / 1e6:.0f} MB/s")
        space = Space(root / "space")
        try:
            provider, consumer = space.member("provider"), space.member("consumer")
            provider.resources.allowed_roots = [data]
            direct_cid = _contract(space, provider, consumer, big, "big")
            relay_cid = _contract(space, provider, consumer, small, "relay")
            serving = space.in_own_process(provider)
            space.in_own_process(space.operator)
            before = {"consumer": _memory_mb(), "provider": _memory_mb(serving.proc.pid)}
            direct, direct_phases = _deliver(consumer, direct_cid, size, relay=False)
            say(f"direct delivery: {direct / 1e6:.0f} MB/s ({size >> 20} MiB; prepare, move: {direct_phases} s)")
            after_direct = {"consumer": _memory_mb(), "provider": _memory_mb(serving.proc.pid)}
            relayed, relay_phases = _deliver(consumer, relay_cid, relay_size, relay=True)
            say(f"relay through mosquitto: {relayed / 1e6:.1f} MB/s ({relay_size >> 20} MiB; {relay_phases} s)")
            after = {"consumer": _memory_mb(), "provider": _memory_mb(serving.proc.pid)}
        finally:
            space.close()
    growth = {node: after[node]["VmHWM"] - before[node]["VmRSS"] for node in before}
    direct_growth = {node: after_direct[node]["VmHWM"] - before[node]["VmRSS"] for node in before}
    peak = max(growth.values())
    say("peak RSS growth: " + ", ".join(f"{node} {mb:.0f} MB" for node, mb in growth.items()))
    ratio = direct / plain
    return Result(
        figures={"direct_mb_s": rnd(direct / 1e6, 1), "relay_mb_s": rnd(relayed / 1e6, 1),
                 "peak_rss_growth_mb": rnd(peak, 1)},
        baseline={"plain_tcp_mb_s": rnd(plain / 1e6, 1)},
        ratio={"direct_vs_plain_tcp": rnd(ratio), "relay_vs_goal": rnd(relayed / 100e6)},
        target={"direct": ">= 0.5x plain TCP", "relay": ">= 100 MB/s", "memory": "< 64 MB growth per process"},
        met={"direct": ratio >= 0.5, "relay": relayed >= 100e6, "memory": peak < 64},
        notes={"bytes": size, "relay_bytes": relay_size,
               "processes": "consumer (measured here), provider and operator each in its own process, as deployed",
               "phases_s": {"direct_prepare_move": direct_phases, "relay_prepare_move": relay_phases},
               "rss_growth_mb": {node: rnd(mb, 1) for node, mb in growth.items()},
               "rss_growth_after_direct_mb": {node: rnd(mb, 1) for node, mb in direct_growth.items()},
               "stages": "provider: read + SHA-256 (whole, chunks); serving: read + SHA-256 + channel AES-GCM; "
                         "consumer: SHA-256 per chunk + AES-GCM staging; beside it, vault encrypt + SHA-256; "
                         "fsync at the end"},
    )
