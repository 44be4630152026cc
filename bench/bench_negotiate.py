"""Contract negotiation: full DSP negotiations (request → FINALIZED, both signatures, agreement filed
with the operator) between two member nodes of a real space through mosquitto on loopback, each node
in a process of its own as it is deployed (the consumer here, the provider and the operator in
child processes): one at a time (p50/p95 latency) and many at once (negotiations/s); the baseline is
the raw MQTT QoS 1 round trip (publish → delivered back to a subscriber) through a mosquitto on the
same machine, measured in the same run. A negotiation is four sealed, signed messages one way after
another, so the floor is about two round trips."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

from appliance.domain.contracts import NegotiationChanged
from bench.harness import Result, percentile, rnd
from bench.spaces import SPACE, Broker, Space, wait_for

DESCRIPTION = "full contract negotiations (request → FINALIZED, signed, filed) p50/p95 and per second vs MQTT RTT"

ENTRY = {"@type": "dcat:Dataset", "dct:title": "温度数据",
         "odrl:hasPolicy": [{"@id": "urn:offer:trial", "@type": "odrl:Offer", "permission": [{"action": "use"}]}]}


class Finalized:
    def __init__(self, node) -> None:
        self.cond = threading.Condition()
        self.done: dict[str, float] = {}
        node.bus.subscribe(self._on, NegotiationChanged)

    def _on(self, e: NegotiationChanged) -> None:
        if e.state == "FINALIZED":
            with self.cond:
                self.done[e.negotiation_id] = time.perf_counter()
                self.cond.notify_all()

    def wait(self, ids, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(i in self.done for i in ids):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("negotiations did not finalize in time")
                self.cond.wait(left)


def _rtt(broker: Broker, n: int) -> list[float]:
    got = threading.Event()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="rtt")
    client.on_message = lambda c, u, m: got.set()
    client.connect(broker.host, broker.port)
    client.subscribe("rtt", qos=1)
    client.loop_start()
    time.sleep(0.2)
    out = []
    try:
        for _ in range(n):
            got.clear()
            t0 = time.perf_counter()
            client.publish("rtt", b"x" * 1500, qos=1)
            if not got.wait(5):
                raise RuntimeError("mosquitto did not echo")
            out.append(time.perf_counter() - t0)
    finally:
        client.loop_stop()
        client.disconnect()
    return out


def run(quick: bool, say) -> Result:
    sequential = 30 if quick else 150
    burst = 150 if quick else 300
    folder = Path(tempfile.mkdtemp(prefix="dsnode-bench-negotiate-"))
    space = Space(folder / "space")
    raw = Broker(folder / "raw")
    try:
        provider, consumer = space.member("provider"), space.member("consumer")
        provider.contracts.add_rule({"offer": "urn:offer:trial"})
        provider.membership.request_listing(SPACE, "ds-1", ENTRY)
        request = wait_for(lambda: space.operator.operator.listings("pending"), what="the listing")[0]
        space.operator.operator.approve_listing(request.id)
        wait_for(lambda: consumer.sync.catalog(SPACE), what="the catalog entry")
        # each node is its own program where it runs (`dsnode run` on its own machine): the provider
        # and the operator serve from processes of their own; the consumer is driven from here
        space.in_own_process(provider)
        space.in_own_process(space.operator)
        finals = Finalized(consumer)
        for _ in range(5):  # warm up
            finals.wait([consumer.contracts.request(SPACE, "ds-1")])
        latencies, rtts = [], []
        for i in range(sequential):
            t0 = time.perf_counter()
            nid = consumer.contracts.request(SPACE, "ds-1")
            finals.wait([nid])
            latencies.append(finals.done[nid] - t0)
            if i % 10 == 9:
                rtts += _rtt(raw, 10)  # interleaved with the negotiations
        say(f"sequential: {sequential} negotiations, p50 {percentile(latencies, 50) * 1000:.1f} ms")
        t0 = time.perf_counter()
        ids = [consumer.contracts.request(SPACE, "ds-1") for _ in range(burst)]
        finals.wait(ids, timeout=600)
        elapsed = max(finals.done[i] for i in ids) - t0
        rate = burst / elapsed
        say(f"burst: {burst} negotiations in {elapsed:.2f} s = {rate:.0f}/s")
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        rtt50 = percentile(rtts, 50)
        return Result(
            figures={"p50_ms": rnd(p50 * 1000, 1), "p95_ms": rnd(p95 * 1000, 1), "negotiations_per_s": rnd(rate, 1)},
            baseline={"mqtt_rtt_p50_ms": rnd(rtt50 * 1000, 2), "mqtt_rtt_p95_ms": rnd(percentile(rtts, 95) * 1000, 2)},
            ratio=rnd(p50 / rtt50, 1),
            target={"p50_ms": "<= 50", "negotiations_per_s": ">= 100"},
            met={"p50_ms": p50 <= 0.050, "negotiations_per_s": rate >= 100},
            notes={"sequential": sequential, "burst": burst, "messages_per_negotiation": 4,
                   "processes": "consumer (measured here), provider and operator each in its own process, as deployed"},
        )
    finally:
        raw.stop()
        space.close()
        shutil.rmtree(folder, ignore_errors=True)
