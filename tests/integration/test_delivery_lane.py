"""The relay's lane (services/delivery/lane.py) between two members of a real space (mosquitto):
a relayed delivery moves its chunks as binary frames on the consumer's inbox, not as chunk messages;
a frame spoiled on the way is dropped and fetched again; junk on the lane is dropped and counted,
and the delivery goes on; a relayed delivery paused midway goes on from what it has once resumed;
a provider without the lane (an earlier version) still relays, with chunk messages."""

from __future__ import annotations

import hashlib
import time

import pytest

from appliance.services.delivery import lane
from appliance.services.delivery.service import RELAY_CHUNK
from tests.deliveries import completed, market, received_bytes
from tests.spaces import SPACE, wait_for

pytestmark = pytest.mark.slow
__all__ = ["market"]  # a fixture


def _same_bytes(consumer, tid: str) -> bool:
    manifest, _ = consumer.transfers.manifest(tid)
    return hashlib.sha256(received_bytes(consumer, tid)).hexdigest() == manifest["sha256"]


def test_a_relayed_delivery_moves_its_chunks_as_binary_lane_frames(market):
    provider, consumer, contract = market
    cid, _ = contract(rows=40_000)
    messages = []
    consumer.sync.on(RELAY_CHUNK, lambda conn, msg: messages.append(msg.type))
    tid = consumer.transfers.request(cid, path="relay")
    completed(provider, consumer, tid, timeout=90)
    t = consumer.transfers.get(tid)
    assert t.path == "relay" and t.chunks_total > 1 and _same_bytes(consumer, tid)
    assert consumer.transfers.lane.counts["kept"] == t.chunks_total
    assert provider.transfers.lane.counts["sent"] >= t.chunks_total
    assert messages == [], "no chunk went as a space message"


def test_a_lane_frame_spoiled_on_the_way_is_dropped_and_fetched_again(market):
    provider, consumer, contract = market
    cid, _ = contract(rows=40_000)
    send_lane, spoiled = provider.sync.send_lane, []

    def spoil(space_id, to, frame):  # the third frame arrives with one bit changed
        if len(spoiled) < 3:
            spoiled.append(frame)
            if len(spoiled) == 3:
                frame = frame[:-20] + bytes([frame[-20] ^ 1]) + frame[-19:]
        return send_lane(space_id, to, frame)

    provider.sync.send_lane = spoil
    tid = consumer.transfers.request(cid, path="relay")
    completed(provider, consumer, tid, timeout=90)
    assert consumer.transfers.lane.counts["dropped:key"] == 1 and _same_bytes(consumer, tid)
    assert consumer.transfers.get(tid).chunks_done == consumer.transfers.get(tid).chunks_total


def test_junk_on_the_lane_is_dropped_and_counted_and_the_delivery_goes_on(market):
    provider, consumer, contract = market
    cid, _ = contract(rows=40_000)
    stranger = lane.seal(lane.AESGCM(bytes(32)), lane.transfer_tag("urn:uuid:other"), 0, 0, b"x" * 100)
    wrong_size = lane.HEADER.pack(lane.MAGIC, lane.VERSION, bytes(16), 0, 0, 1000, bytes(12)) + bytes(100)
    junk = [lane.MAGIC + b"\x01short", lane.MAGIC + b"\x09" + bytes(60), stranger, b"\x00" + bytes(1000), wrong_size]
    for frame in junk:  # through the broker, from another member of the space
        assert provider.sync.send_lane(SPACE, consumer.identity.did, frame)
    tid = consumer.transfers.request(cid, path="relay")
    completed(provider, consumer, tid, timeout=90)
    counts = consumer.transfers.lane.counts
    assert [counts["dropped:" + why] for why in ("header", "version", "size", "transfer")] == [2, 1, 1, 1], counts
    assert _same_bytes(consumer, tid)


def test_a_relayed_delivery_paused_midway_goes_on_once_resumed(market):
    provider, consumer, contract = market
    cid, _ = contract(rows=250_000)  # about 10 MB: 76 chunks
    send_lane = provider.sync.send_lane

    def slowly(*frame):  # a slow route through the broker: the pause falls in the middle
        time.sleep(0.02)
        return send_lane(*frame)

    provider.sync.send_lane = slowly
    tid = consumer.transfers.request(cid, path="relay")
    wait_for(lambda: consumer.transfers.get(tid).chunks_done >= 5, 60, "a few chunks")
    consumer.transfers.pause(tid)
    wait_for(lambda: consumer.transfers.get(tid).state == "SUSPENDED", 30, "the pause")
    paused = consumer.transfers.get(tid).chunks_done
    assert paused < consumer.transfers.get(tid).chunks_total
    consumer.transfers.resume(tid)
    completed(provider, consumer, tid, timeout=90)
    assert _same_bytes(consumer, tid)


def test_a_provider_without_the_lane_still_relays_with_chunk_messages(market):
    provider, consumer, contract = market
    cid, _ = contract(rows=40_000)
    provider.transfers.lane.ask = lambda *ask: False  # as a provider of an earlier version: the key is ignored
    messages = []
    consumer.sync.on(RELAY_CHUNK, lambda conn, msg: messages.append(msg.type))
    tid = consumer.transfers.request(cid, path="relay")
    completed(provider, consumer, tid, timeout=90)
    assert _same_bytes(consumer, tid) and messages and consumer.transfers.lane.counts["kept"] == 0
