"""Space sync: signed messages/s from one node to mosquitto at QoS 1 through the real path (written
to the outbox in the caller's transaction, signed and published by the link, marked sent on PUBACK), against
a bare paho-mqtt publisher of same-size payloads in the same run; and the time to drain 10,000
messages queued while offline after the broker returns, against the bare publisher doing the same."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

from appliance.clock import SystemClock
from appliance.crypto.keys import SigningKey
from appliance.domain.sync import MessagesSent, SyncStateChanged
from appliance.node import Node
from appliance.services.sync import SpaceConfig, SyncTimers
from appliance.services.sync.codec import SIGNED_EXTRA
from appliance.storage import KdfParams
from bench.harness import Result, rnd
from bench.spaces import Broker

DESCRIPTION = "signed catalog/evidence messages/s to mosquitto at QoS 1 vs bare paho; drain 10,000 queued offline"

SPACE = "bench-space"
PASSPHRASE = b"benchmark passphrase"
PER_TX = 100  # messages written per transaction by the producer (one fsync each)
TIMERS = SyncTimers(backoff_initial=0.05, backoff_max=0.2, connect_timeout=5.0)


def _body(i: int) -> dict:
    """A catalog entry of realistic size (about 900 bytes signed)."""
    return {"dataset": f"ds-{i % 500}", "title": f"产线传感器数据 第{i}批",
            "description": "温度、振动与电流，每分钟一条。" * 6,
            "keywords": ["制造", "传感器", "质量"], "issued": "2026-11-22T10:00:00.000Z",
            "offers": [{"price": 100 + i % 7, "currency": "CNY", "permission": [{"action": "use",
                        "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}]}]}]}


def _topic(did: str, i: int) -> str:
    return f"evidence/{did}" if i % 10 == 0 else f"catalog/{did}/ds-{i % 500}"


class OurNode:
    def __init__(self, folder: Path, broker: Broker) -> None:
        self.node = Node.init(folder / "node", PASSPHRASE, name="bench", kdf=KdfParams.fast(), clock=SystemClock(),
                              sync_timers=TIMERS)
        self.did = self.node.identity.did
        op = SigningKey.generate().did
        cfg = SpaceConfig(SPACE, "bench", op, "127.0.0.1", broker.port, None, self.did, "x", "member", None)
        self.node.store.db.write(lambda c: self.node.sync.add_space(c, cfg))
        self._sent = 0
        self._cond = threading.Condition()
        self.connected_at: float | None = None
        self.node.bus.subscribe(self._on_sent, MessagesSent)
        self.node.bus.subscribe(self._on_state, SyncStateChanged)

    def _on_sent(self, e: MessagesSent) -> None:
        with self._cond:
            self._sent += e.count
            self._cond.notify_all()

    def _on_state(self, e: SyncStateChanged) -> None:
        if e.state == "connected" and self.connected_at is None:
            self.connected_at = time.perf_counter()

    def produce(self, n: int, start: int = 0) -> None:
        sync, did = self.node.sync, self.did
        for b in range(start, start + n, PER_TX):
            self.node.store.db.write(lambda c, b=b: [
                sync.publish(c, SPACE, topic=_topic(did, i), type="dsnode.catalog.entry", body=_body(i), retained=True)
                for i in range(b, min(b + PER_TX, start + n))])

    def wait_sent(self, total: int, timeout: float = 300) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._sent >= total, timeout):
                raise RuntimeError(f"only {self._sent} of {total} messages were acknowledged")

    def payload_size(self) -> int:
        signed = SIGNED_EXTRA + len(self.node.sync.signing_key().did)  # rows are signed as they are published
        return self.node.store.db.read(lambda c: c.execute(
            "SELECT AVG(LENGTH(payload) + IIF(sign_at IS NULL, 0, ?)) FROM sync_outbox", (signed,)).fetchone()[0])

    def close(self) -> None:
        self.node.close()


def _ours_rate(ours: OurNode, n: int) -> float:
    already = ours._sent
    start = time.perf_counter()
    ours.produce(n)
    ours.wait_sent(already + n)
    return n / (time.perf_counter() - start)


class Bare:
    """A bare paho publisher (its own network thread, as paho users usually run it)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bare-bench", protocol=paho.MQTTv5)
        self.client.max_queued_messages_set(0)
        self._acked = 0
        self._cond = threading.Condition()
        self.client.on_publish = self._on_publish
        self._connected = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()
        # paho ignores the broker's Receive Maximum; an MQTT 5 publisher must not exceed it (dsnode does not)
        self.client.max_inflight_messages_set(min(TIMERS.window, receive_maximum(broker)))

    def _on_publish(self, client, userdata, mid, rc, props) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    def connect(self) -> None:
        self._connected.clear()
        self.client.connect("127.0.0.1", self.broker.port)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError("bare client did not connect")

    def publish_all(self, payloads: list[tuple[str, bytes]]) -> None:
        target = self._acked + len(payloads)
        for topic, payload in payloads:
            self.client.publish(topic, payload, qos=1, retain=True)
        with self._cond:
            if not self._cond.wait_for(lambda: self._acked >= target, 300):
                raise RuntimeError("bare publisher: not every message was acknowledged")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def receive_maximum(broker: Broker) -> int:
    """The Receive Maximum the broker announces in CONNACK (how many QoS 1 messages may be in flight)."""
    found: list[int] = []
    probe = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="probe", protocol=paho.MQTTv5)
    probe.on_connect = lambda c, u, f, rc, props: found.append(getattr(props, "ReceiveMaximum", 65535))
    probe.connect("127.0.0.1", broker.port)
    deadline = time.monotonic() + 10
    while not found and time.monotonic() < deadline:
        probe.loop(0.05)
    probe.disconnect()
    return found[0] if found else 65535


def _payloads(n: int, size: int) -> list[tuple[str, bytes]]:
    did = "did:key:z6MkbarePublisherOfSameSizePayloads0000000000"
    return [(f"tds/v1/bare-space/{_topic(did, i)}", os.urandom(size // 2).hex().encode()[:size]) for i in range(n)]


def run(quick: bool, say) -> Result:
    n = 3000 if quick else 20000
    drain_n = 10000
    rounds = 2 if quick else 3
    folder = Path(tempfile.mkdtemp(prefix="dsnode-bench-sync-"))
    broker = Broker(folder / "broker")
    ours = OurNode(folder, broker)
    bare = Bare(broker)
    try:
        ours.node.start()
        ours.node.sync.wait_settled(timeout=15, quiet=0.2)
        bare.connect()
        ours.produce(200, start=10**6)  # warm up both
        ours.wait_sent(200)
        size = int(ours.payload_size())
        bare.publish_all(_payloads(200, size))
        say(f"payload {size} bytes; {n} messages per round, {rounds} rounds, interleaved")
        our_rates, bare_rates = [], []
        for r in range(rounds):
            our_rates.append(_ours_rate(ours, n))
            payloads = _payloads(n, size)
            start = time.perf_counter()
            bare.publish_all(payloads)
            bare_rates.append(n / (time.perf_counter() - start))
            say(f"  round {r + 1}: dsnode {our_rates[-1]:,.0f}/s, bare paho {bare_rates[-1]:,.0f}/s")
        bare.close()

        say(f"drain: {drain_n} messages queued while the broker is down")
        ours.node.stop()
        broker.stop()
        ours.produce(drain_n, start=2 * 10**6)
        ours.connected_at = None
        already = ours._sent
        ours.node.start()
        time.sleep(0.3)  # the node is retrying with backoff
        broker.start()
        t0 = time.perf_counter()
        ours.wait_sent(already + drain_n)
        our_drain = time.perf_counter() - t0
        our_drain_connected = time.perf_counter() - (ours.connected_at or t0)
        ours.node.stop()

        broker.stop()
        payloads = _payloads(drain_n, size)
        broker.start()
        t0 = time.perf_counter()
        bare = Bare(broker)
        bare.connect()
        bare.publish_all(payloads)
        bare_drain = time.perf_counter() - t0
        bare.close()
        say(f"  dsnode {our_drain:.2f} s from broker start ({our_drain_connected:.2f} s from connect), "
            f"bare paho {bare_drain:.2f} s")
    finally:
        ours.close()
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)

    ours_best, bare_best = max(our_rates), max(bare_rates)
    rate_ratio = ours_best / bare_best
    drain_ratio = bare_drain / our_drain
    return Result(
        figures={"msgs_per_s": round(ours_best), "drain_10k_s": rnd(our_drain), "drain_10k_from_connect_s":
                 rnd(our_drain_connected), "payload_bytes": size},
        baseline={"bare_paho_msgs_per_s": round(bare_best), "bare_paho_drain_10k_s": rnd(bare_drain)},
        ratio={"rate": rnd(rate_ratio), "drain": rnd(drain_ratio)},
        target={"rate": ">= 0.6", "drain": ">= 0.6"},
        met={"rate": rate_ratio >= 0.6, "drain": drain_ratio >= 0.6},
        notes={"round_ratios": [rnd(o / b) for o, b in zip(our_rates, bare_rates, strict=True)],  # the spread
               "producer": f"{PER_TX} messages per transaction into the outbox (store synchronous=FULL), "
                           "signed as published",
               "window": "both publishers keep at most the broker's Receive Maximum in flight",
               "drain_baseline": "bare paho connects after the broker is up and publishes from memory"},
    )
