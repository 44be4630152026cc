"""From a node starting to another listing it as a verified peer, on loopback: zeroconf
announcement, resolution, and the challenge through the data channel (node key and membership
credential). The baseline is the time the challenge alone takes (a channel handshake and the
credential exchange), measured in the same run.

Two member nodes of a space (an operator with mosquitto, auto-admission). Node A runs its peer
service; node B is started again and again (its advertiser and browser from scratch) and A is timed
from B's start until A lists B as verified. Each round has its own service name, so a previous
round's cache never helps.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from pathlib import Path

from appliance.net import channel as ch
from bench.harness import Result, rnd
from bench.spaces import Space, wait_for

DESCRIPTION = "node start to verified peer on loopback (zeroconf + signed challenge) vs the challenge alone"


def run(quick: bool, say) -> Result:
    rounds = 3 if quick else 10
    times, challenge = [], []
    with tempfile.TemporaryDirectory(prefix="dsnode-bench-discovery-") as tmp:
        space = Space(Path(tmp) / "space")
        try:
            a, b = space.member("a"), space.member("b")
            for _ in range(rounds):
                service = f"_dsb{secrets.token_hex(3)}._tcp.local."
                a.peers.service_type = b.peers.service_type = service
                a.peers.start(("127.0.0.1",))
                try:
                    start = time.perf_counter()
                    b.peers.start(("127.0.0.1",))
                    wait_for(lambda: [p for p in a.peers.peers() if p.did == b.identity.did and p.verified], 30,
                             "a verified peer")
                    times.append(time.perf_counter() - start)
                    t0 = time.perf_counter()
                    c = ch.connect("127.0.0.1", b.transfers.channel_port, a.keyring.signing_key(),
                                   expect_did=b.identity.did)
                    c.send_json({"type": "hello", "credentials": a.peers.credentials()})
                    c.recv_json(timeout=5)
                    c.close()
                    challenge.append(time.perf_counter() - t0)
                finally:
                    b.peers.stop()
                    a.peers.stop()
                say(f"verified after {times[-1] * 1000:.0f} ms (challenge alone {challenge[-1] * 1000:.1f} ms)")
        finally:
            space.close()
    median = statistics.median(times)
    return Result(
        figures={"start_to_verified_ms": rnd(median * 1000, 1), "worst_ms": rnd(max(times) * 1000, 1)},
        baseline={"challenge_ms": rnd(statistics.median(challenge) * 1000, 2)},
        ratio={"vs_goal": rnd(median / 0.5), "vs_challenge": rnd(median / statistics.median(challenge), 1)},
        target={"start_to_verified": "<= 0.5 s on loopback"},
        met={"start_to_verified": median <= 0.5},
        notes={"rounds": rounds, "between_namespaces": "not measured here (tests/integration/test_discovery.py "
               "crosses a veth pair)"},
    )
