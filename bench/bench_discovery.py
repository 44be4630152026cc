"""From a node starting to another listing it as a verified peer, on loopback and between two
network namespaces joined by a veth pair: zeroconf announcement, resolution, and the challenge
through the data channel (node key and membership credential). The baseline is the time the
challenge alone takes (a channel handshake and the credential exchange), measured in the same run.

Two member nodes of a space (an operator with mosquitto, auto-admission). Node A runs its peer
service; node B is started again and again (its advertiser and browser from scratch) and A is timed
from B's start until A lists B as verified. Each round has its own service name, so a previous
round's cache never helps.

Between namespaces (as root, with iproute2; tests/netns.py makes them): the broker, the operator
and A in one namespace, B in the other, each advertising and serving its data channel on its veth
address only, so announcements, resolution and the challenge cross the link. Where namespaces
cannot be made, the figure is absent and the notes say why.
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

DESCRIPTION = ("node start to verified peer on loopback and between network namespaces (zeroconf + signed "
               "challenge) vs the challenge alone")


def _round(a, b, addresses: tuple[str, str], inside=lambda side, f, *args: f(*args)) -> tuple[float, float]:
    """(B's start to A listing it verified, the challenge alone), in seconds; ``inside(side, f, *args)``
    runs ``f`` in side 0's (A's) or side 1's (B's) network."""
    service = f"_dsb{secrets.token_hex(3)}._tcp.local."
    a.peers.service_type = b.peers.service_type = service
    inside(0, a.peers.start, (addresses[0],))
    try:
        start = time.perf_counter()
        inside(1, b.peers.start, (addresses[1],))
        wait_for(lambda: [p for p in a.peers.peers() if p.did == b.identity.did and p.verified], 30, "a verified peer")
        found = time.perf_counter() - start

        def challenge() -> float:
            t0 = time.perf_counter()
            c = ch.connect(addresses[1], b.transfers.channel_port, a.keyring.signing_key(), expect_did=b.identity.did)
            c.send_json({"type": "hello", "credentials": a.peers.credentials()})
            c.recv_json(timeout=5)
            c.close()
            return time.perf_counter() - t0

        return found, inside(0, challenge)
    finally:
        inside(1, b.peers.stop)
        inside(0, a.peers.stop)


def _loopback(root: Path, rounds: int, say) -> tuple[list[float], list[float]]:
    times, challenges = [], []
    space = Space(root)
    try:
        a, b = space.member("a"), space.member("b")
        for _ in range(rounds):
            found, challenge = _round(a, b, ("127.0.0.1", "127.0.0.1"))
            times.append(found)
            challenges.append(challenge)
            say(f"loopback: verified after {found * 1000:.0f} ms (challenge alone {challenge * 1000:.1f} ms)")
    finally:
        space.close()
    return times, challenges


def _serve_on(node, address: str) -> None:
    node.transfers.stop()  # the data channel on the namespace's veth address
    node.transfers.host = address
    node.transfers.start()


def _namespaces(root: Path, rounds: int, say) -> tuple[list[float], str]:
    """The rounds between two namespaces; ([], why) where they cannot be made."""
    try:
        from tests.netns import NetnsPair, NetnsUnavailable
    except ImportError as e:  # an installation without the test suite
        return [], f"not measured: {e}"
    try:
        pair = NetnsPair()
    except NetnsUnavailable as e:
        return [], f"not measured: {e}"
    times: list[float] = []
    try:
        space = pair.run(0, lambda: Space(root, host=pair.addresses[0]))
        try:
            a = pair.run(0, space.member, "a")
            b = pair.run(1, space.member, "b")
            pair.run(0, _serve_on, a, pair.addresses[0])
            pair.run(1, _serve_on, b, pair.addresses[1])
            for _ in range(rounds):
                found, challenge = _round(a, b, pair.addresses, pair.run)
                times.append(found)
                say(f"namespaces: verified after {found * 1000:.0f} ms (challenge alone {challenge * 1000:.1f} ms)")
        finally:
            space.close()
    finally:
        pair.close()
    return times, "A and the broker in one namespace, B in the other, a veth pair between (10.77.0.1, 10.77.0.2)"


def run(quick: bool, say) -> Result:
    rounds = 3 if quick else 10
    with tempfile.TemporaryDirectory(prefix="dsnode-bench-discovery-") as tmp:
        times, challenge = _loopback(Path(tmp) / "space", rounds, say)
        veth, how = _namespaces(Path(tmp) / "veth-space", rounds, say)
    median = statistics.median(times)
    figures = {"start_to_verified_ms": rnd(median * 1000, 1), "worst_ms": rnd(max(times) * 1000, 1)}
    met = {"start_to_verified": median <= 0.5}
    if veth:
        figures.update(namespaces_start_to_verified_ms=rnd(statistics.median(veth) * 1000, 1),
                       namespaces_worst_ms=rnd(max(veth) * 1000, 1))
        met["namespaces_start_to_verified"] = statistics.median(veth) <= 0.5
    return Result(
        figures=figures,
        baseline={"challenge_ms": rnd(statistics.median(challenge) * 1000, 2)},
        ratio={"vs_goal": rnd(median / 0.5), "vs_challenge": rnd(median / statistics.median(challenge), 1)},
        target={"start_to_verified": "<= 0.5 s on loopback and between namespaces"},
        met=met,
        notes={"rounds": rounds, "between_namespaces": how},
    )
