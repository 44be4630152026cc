"""Faults with a real mosquitto: the broker stopped or killed and restarted, a node killed with
SIGKILL mid-sync, the operator offline while nodes publish, messages lost on the way (a gap is
filled by a resend request). After recovery every queued message arrives and none applies twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.clock import SystemClock
from appliance.node import Node
from tests.integration.sync_helpers import (
    FAST,
    PASSPHRASE,
    eventually,
    join,
    make_node,
    queued,
    record_pings,
    send_pings,
)

ROOT = Path(__file__).resolve().parents[2]


def test_broker_stopped_for_a_while_then_restarted(pair, mosquitto):
    a, b = pair
    applied = record_pings(b)
    a.start()
    b.start()
    b.sync.wait_settled(timeout=10)
    mosquitto.stop()
    send_pings(a, b.identity.did, range(100), per_tx=10)
    eventually(lambda: a.sync.status()[0].state == "offline" and b.sync.status()[0].state == "offline",
               what="both offline")
    time.sleep(1.0)  # a while: both keep retrying with backoff
    assert queued(a) == 100
    mosquitto.start()
    eventually(lambda: len(applied()) >= 100, what="all 100 after the broker came back")
    b.sync.wait_settled(timeout=10)
    assert sorted(applied()) == list(range(100))


def test_broker_killed_mid_sync_loses_its_state_yet_nothing_is_lost(pair, mosquitto):
    a, b = pair
    applied = record_pings(b)
    a.start()
    b.start()
    b.sync.wait_settled(timeout=10)
    send_pings(a, b.identity.did, range(300), per_tx=5)
    eventually(lambda: len(applied()) > 20, what="some messages through")
    mosquitto.kill()  # no clean shutdown: in-flight messages and b's session are gone
    send_pings(a, b.identity.did, range(300, 350), per_tx=5)
    time.sleep(0.5)
    mosquitto.start()
    eventually(lambda: len(set(applied())) == 350, timeout=30, what="all 350 after the crash")
    b.sync.wait_settled(timeout=10)
    assert sorted(applied()) == list(range(350))


def test_operator_offline_while_nodes_publish(tmp_path, mosquitto, clock):
    op = make_node(tmp_path / "op", "operator", clock)
    a = make_node(tmp_path / "a", "a", clock)
    b = make_node(tmp_path / "b", "b", clock)
    try:
        join(op, mosquitto, status="operator", operator_did=op.identity.did)
        join(a, mosquitto, operator_did=op.identity.did)
        join(b, mosquitto, operator_did=op.identity.did)
        applied = record_pings(op)
        op.start()
        op.sync.wait_settled(timeout=10)
        op.stop()
        a.start()
        b.start()
        send_pings(a, op.identity.did, range(0, 20), per_tx=4)
        send_pings(b, op.identity.did, range(20, 40), per_tx=4)
        eventually(lambda: queued(a) == 0 and queued(b) == 0, what="both drained to the broker")
        op.start()
        eventually(lambda: len(applied()) >= 40, what="the operator gets everything")
        op.sync.wait_settled(timeout=10)
        assert sorted(applied()) == list(range(40))
    finally:
        for n in (op, a, b):
            n.close()


def test_a_gap_is_filled_by_a_resend_request(pair):
    a, b = pair
    applied = record_pings(b)
    a.start()
    b.start()
    a.sync.wait_settled(timeout=10)
    b.sync.wait_settled(timeout=10)
    a.stop()
    send_pings(a, b.identity.did, [1, 2, 3, 4, 5])
    # pretend the broker lost two of them: marked sent, never published
    a.store.db.write(lambda c: c.execute(
        "UPDATE sync_outbox SET sent = '2026-01-01T00:00:00.000Z' WHERE type = 'test.ping' AND seq IN (2, 4)"))
    a.start()
    eventually(lambda: sorted(applied()) == [1, 2, 3, 4, 5], what="the gap filled")
    assert applied()[:2] == [1, 3]  # 2 came later, on request
    b.sync.wait_settled(timeout=10)
    gaps = b.store.db.read(
        lambda c: c.execute("SELECT contiguous, above FROM sync_stream_in WHERE stream LIKE 'inbox/%'").fetchall())
    assert gaps == [(5, "[]")]


def _child(role: str, home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.integration.sync_child", role, str(home), *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _wait_line(proc: subprocess.Popen, prefix: str, at_least: int = 0, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        word, _, n = line.strip().partition(" ")
        if word == prefix and (not n or int(n) >= at_least):
            return
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"child never printed {prefix} {at_least}")


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def test_a_sender_killed_mid_sync_loses_and_duplicates_nothing(tmp_path, mosquitto):
    clock = SystemClock()
    a = make_node(tmp_path / "a", "a", clock)
    b = make_node(tmp_path / "b", "b", clock)
    try:
        join(a, mosquitto)
        join(b, mosquitto)
        a.close()
        applied = record_pings(b)
        b.start()
        b.sync.wait_settled(timeout=10)
        child = _child("send", tmp_path / "a", b.identity.did, "400")
        _wait_line(child, "sent", 150)
        _kill(child)
        a = Node.open(tmp_path / "a", PASSPHRASE, clock=clock, sync_timers=FAST)
        committed = a.store.db.read(
            lambda c: c.execute("SELECT COUNT(*) FROM sync_outbox WHERE type = 'test.ping'").fetchone()[0])
        assert committed >= 150
        a.start()
        eventually(lambda: len(applied()) >= committed, timeout=30, what=f"all {committed} committed messages")
        b.sync.wait_settled(timeout=10)
        assert sorted(applied()) == list(range(committed))
    finally:
        a.close()
        b.close()


def test_a_receiver_killed_mid_sync_loses_and_duplicates_nothing(tmp_path, mosquitto):
    clock = SystemClock()
    a = make_node(tmp_path / "a", "a", clock)
    b = make_node(tmp_path / "b", "b", clock)
    try:
        join(a, mosquitto)
        join(b, mosquitto)
        b_did = b.identity.did
        b.close()
        child = _child("receive", tmp_path / "b")
        _wait_line(child, "ready")
        a.start()
        send_pings(a, b_did, range(400), per_tx=20)
        _wait_line(child, "applied", 100)
        _kill(child)
        b = Node.open(tmp_path / "b", PASSPHRASE, clock=clock, sync_timers=FAST)
        applied = record_pings(b)
        before = len(applied())
        assert 100 <= before < 400 or before == 400
        b.start()
        eventually(lambda: len(applied()) >= 400, timeout=30, what="all 400 at the restarted receiver")
        b.sync.wait_settled(timeout=10)
        assert sorted(applied()) == list(range(400))
    finally:
        a.close()
        b.close()


def test_a_damaged_outbox_row_is_recorded_as_refused_and_the_queue_goes_on(pair):
    a, b = pair
    applied = record_pings(b)
    send_pings(a, b.identity.did, [1, 2, 3])
    a.store.db.write(lambda c: c.execute(  # the second row no longer says where its signature goes
        "UPDATE sync_outbox SET sign_at = sign_at + 3 WHERE type = 'test.ping' AND seq = 2"))
    a.start()
    b.start()
    eventually(lambda: queued(a) == 0, what="the queue drained")
    errors = a.store.db.read(lambda c: c.execute(
        "SELECT seq, error FROM sync_outbox WHERE type = 'test.ping' AND error IS NOT NULL").fetchall())
    assert [seq for seq, _ in errors] == [2] and "damaged" in errors[0][1]
    eventually(lambda: sorted(applied()) == [1, 3], what="the messages around it")
    send_pings(a, b.identity.did, [4])
    eventually(lambda: sorted(applied()) == [1, 3, 4], what="later messages")
