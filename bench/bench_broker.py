"""The embedded broker under a space's load, beside mosquitto with the same accounts and rules in the
same run: 200 member clients (dynamic-security accounts, the member rules, each subscribed to the
whole space as nodes are) publish QoS 1 messages, mostly to one peer's inbox and some to the
catalog (every member receives those), while one more member subscribes and never reads. Figures:
messages delivered per second, and the broker process's peak memory."""

from __future__ import annotations

import json
import random
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mqtt5

from appliance.crypto.keys import SigningKey
from appliance.operator import broker_config as bc
from bench.harness import Result, rnd
from bench.spaces import Broker, free_port

DESCRIPTION = ("embedded broker vs mosquitto, same rules: 200 members' QoS 1 messages/s with a stalled subscriber, "
               "peak RSS")

SPACE = "bench-space"
ROOT = bc.space_root(SPACE)
PAYLOAD = 1000
WINDOW = 20  # QoS 1 messages each client keeps in flight
CATALOG_EVERY = 50  # one message in this many goes to the catalog (to every member)
Q1 = mqtt5.QoS.AT_LEAST_ONCE


def _document(members: list[tuple[str, str]]) -> dict:
    doc = bc.dynsec_document(SPACE, operator_did=SigningKey.generate().did, operator_password="op",
                             admin_password="admin")
    for did, password in members:
        role = bc.member_rolename(did)
        doc["roles"].append({"rolename": role, "acls": bc.dynsec_acls(bc.member_rules(SPACE, did))})
        doc["clients"].append(bc.dynsec_client(did, password, role, textname="member"))
    return doc


class Client:
    def __init__(self, port: int, did: str, password: str, *, rcvbuf: int | None = None) -> None:
        self.did = did
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(mqtt5.ConnectPacket(f"bench-{did[-12:]}", username=did, password=password.encode(),
                                              keep_alive=0).write())
        self.buf = bytearray()
        self.out = bytearray()
        self.pid = 0
        self.inflight = 0
        self.to_send = 0
        self.received = 0
        self.connected = False
        self.subscribed = False

    def packets(self):
        view, at = memoryview(self.buf), 0
        try:
            while at < len(self.buf):
                try:
                    packet, used = mqtt5.read(view[at:])
                except IndexError:
                    break
                at += used
                yield packet
        finally:
            view.release()
            del self.buf[:at]

    def publish(self, topic: str, payload: bytes) -> None:
        self.pid = self.pid % 65535 + 1
        self.out += mqtt5.PublishPacket(topic, payload, qos=Q1, packet_id=self.pid).write()
        self.inflight += 1
        self.to_send -= 1


class Fleet:
    """The members as raw MQTT 5 sockets driven by one selector loop (light enough that the broker,
    not the load, sets the pace)."""

    def __init__(self, port: int, members: list[tuple[str, str]], stalled: tuple[str, str]) -> None:
        self.clients = [Client(port, did, pw) for did, pw in members]
        self.stalled = Client(port, *stalled, rcvbuf=4096)
        self.sel = selectors.DefaultSelector()
        for c in self.clients:
            c.sock.setblocking(False)
            self.sel.register(c.sock, selectors.EVENT_READ, c)
        self._until(lambda: all(c.connected for c in self.clients), "CONNACKs")
        sub = mqtt5.SubscribePacket(1, [mqtt5.TopicFilter(f"{ROOT}/#", max_qos=Q1)]).write()
        for c in self.clients:
            c.out += sub
        self.stalled.sock.sendall(sub)  # and then it never reads again
        self._until(lambda: all(c.subscribed for c in self.clients), "SUBACKs")

    def _step(self, timeout: float) -> None:
        for c in self.clients:
            if c.out:
                try:
                    sent = c.sock.send(c.out)
                    del c.out[:sent]
                except BlockingIOError:
                    pass
        for key, _ in self.sel.select(timeout):
            c = key.data
            try:
                data = c.sock.recv(1 << 18)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError(f"the broker closed {c.did}")
            c.buf += data
            for p in c.packets():
                if isinstance(p, mqtt5.PublishPacket):
                    c.received += 1
                    c.out += mqtt5.PubAckPacket(p.packet_id).write()
                elif isinstance(p, mqtt5.PubAckPacket):
                    c.inflight -= 1
                elif isinstance(p, mqtt5.ConnAckPacket):
                    if p.reason_code != mqtt5.ConnAckReasonCode.SUCCESS:
                        raise RuntimeError(f"refused: {p.reason_code}")
                    c.connected = True
                elif isinstance(p, mqtt5.SubAckPacket):
                    c.subscribed = True

    def _until(self, done, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            self._step(0.05)

    def run(self, per_client: int, seed: int) -> tuple[float, int]:
        """Each client publishes ``per_client`` messages; returns (seconds, deliveries)."""
        rng = random.Random(seed)
        dids = [c.did for c in self.clients]
        payload = b"p" * PAYLOAD
        before = sum(c.received for c in self.clients)
        expected = 0
        plan = []
        for c in self.clients:
            c.to_send = per_client
            for i in range(per_client):
                if i % CATALOG_EVERY == 0:
                    plan.append((c, f"{ROOT}/catalog/{c.did}/ds-{i}"))
                    expected += len(self.clients)
                else:
                    plan.append((c, f"{ROOT}/inbox/{rng.choice(dids)}"))
                    expected += 1
        queues: dict[Client, list[str]] = {}
        for c, topic in plan:
            queues.setdefault(c, []).append(topic)
        for q in queues.values():
            q.reverse()
        start = time.perf_counter()

        def done() -> bool:
            for c, q in queues.items():
                while q and c.inflight < WINDOW:
                    c.publish(q.pop(), payload)
            return (all(not q and c.inflight == 0 for c, q in queues.items())
                    and sum(c.received for c in self.clients) - before >= expected)

        self._until(done, "every message delivered", timeout=600)
        return time.perf_counter() - start, expected

    def close(self) -> None:
        for c in [*self.clients, self.stalled]:
            c.sock.close()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _embedded(folder: Path, document: dict) -> tuple[subprocess.Popen, int]:
    path = folder / "embedded.json"
    path.write_text(json.dumps(document))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.broker_serve", str(path), str(port)],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        proc.kill()
        raise RuntimeError("the embedded broker did not start")
    return proc, port


def _mosquitto(folder: Path, document: dict) -> Broker:
    out = folder / "mosquitto"
    out.mkdir()
    bc.write_dynsec_file(out / "dynamic-security.json", document)
    port = free_port()
    conf = bc.mosquitto_conf(out, bc.ListenerConfig(port=port)).replace("persistence true", "persistence false")
    return Broker(out, config_text=conf, port=port)


def _measure(port: int, members, stalled, per_client: int, rounds: int, say, label: str) -> float:
    fleet = Fleet(port, members, stalled)
    try:
        fleet.run(5, seed=0)  # warm up
        rates = []
        for r in range(rounds):
            seconds, delivered = fleet.run(per_client, seed=r + 1)
            rates.append(delivered / seconds)
            say(f"  {label} round {r + 1}: {delivered:,} deliveries in {seconds:.2f} s = {rates[-1]:,.0f}/s")
        return max(rates)
    finally:
        fleet.close()


def run(quick: bool, say) -> Result:
    n_clients = 200
    per_client = 25 if quick else 100
    rounds = 2 if quick else 3
    members = [(SigningKey.generate().did, f"pw-{i}") for i in range(n_clients + 1)]
    stalled = members.pop()
    document = _document([*members, stalled])
    folder = Path(tempfile.mkdtemp(prefix="dsnode-bench-broker-"))
    try:
        say(f"{n_clients} members, {per_client} QoS 1 messages each per round ({PAYLOAD} bytes; one in "
            f"{CATALOG_EVERY} to the catalog), {WINDOW} in flight each, one stalled subscriber")
        mosquitto = _mosquitto(folder, document)
        try:
            theirs = _measure(mosquitto.port, members, stalled, per_client, rounds, say, "mosquitto")
            their_rss = _peak_rss_mb(mosquitto.proc.pid)
        finally:
            mosquitto.stop()
        proc, port = _embedded(folder, document)
        try:
            ours = _measure(port, members, stalled, per_client, rounds, say, "embedded")
            our_rss = _peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ratio = ours / theirs
    say(f"peak memory: embedded {our_rss:.1f} MB, mosquitto {their_rss:.1f} MB")
    return Result(
        figures={"deliveries_per_s": round(ours), "peak_rss_mb": rnd(our_rss, 1)},
        baseline={"mosquitto_deliveries_per_s": round(theirs), "mosquitto_peak_rss_mb": rnd(their_rss, 1)},
        ratio={"rate": rnd(ratio)},
        target={"rate": ">= 0.5", "peak_rss_mb": "< 100"},
        met={"rate": ratio >= 0.5, "peak_rss_mb": our_rss < 100},
        notes={"load": "one selector loop of raw MQTT 5 sockets in the benchmark process; the broker in its own",
               "rules": "both brokers start from the same dynamic-security document (member rules, 201 accounts)",
               "stalled": "one member subscribed to the whole space with a 4 KiB receive buffer, never reading"},
    )
