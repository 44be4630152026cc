"""Push delivery: the provider connects to the consumer's data channel and delivers under a finalized
contract (started at the provider, or asked for by the consumer), with the same manifest, receipt,
record and evidence as a pull; refused with the reason on both sides; resumed after either side
stops; found by discovery; through the broker when there is no route."""

from __future__ import annotations

import hashlib
import secrets
import time

import pytest

from appliance.errors import DeliveryError
from appliance.host import NodeHost
from tests.deliveries import ROWS, completed, consumer_side, market, pushed, received_bytes
from tests.spaces import wait_for

pytestmark = pytest.mark.slow
__all__ = ["market"]  # a fixture


def test_the_provider_pushes_the_data_to_the_consumers_channel_with_manifest_receipt_and_record(market, space):
    provider, consumer, contract = market
    cid, pid = contract()
    connected = []
    serve = consumer.transfers._serve

    def watched(channel):  # who opened the consumer's data channel
        connected.append(channel.peer_did)
        return serve(channel)

    consumer.transfers._server._handler = watched
    tid = provider.transfers.push(pid)
    theirs = pushed(provider, consumer, tid)
    assert provider.identity.did in connected, "the provider connected to the consumer"
    assert (theirs.mode, provider.transfers.get(tid).mode) == ("push", "push")
    assert theirs.path.startswith("direct:") and provider.transfers.get(tid).path.startswith("direct:")
    data = received_bytes(consumer, theirs.id)
    manifest, _ = consumer.transfers.manifest(theirs.id)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and len(data.splitlines()) == ROWS + 1
    assert b"13800130000" not in data, "masked as for a pull"
    receipt, _ = provider.transfers.receipt(tid)
    assert receipt["sha256"] == manifest["sha256"]
    wait_for(lambda: [d for d in space.operator.operator.deliveries() if d.transfer_id == tid],
             what="the operator's delivery record")
    assert [e.action for e in consumer.evidence.entries() if e.subject == theirs.id] == [
        "transfer.requested", "transfer.started", "data.received", "transfer.completed"]
    assert "transfer.receipt_filed" in [e.action for e in provider.evidence.entries() if e.subject == tid]


def test_a_consumer_may_ask_for_a_push_and_a_push_without_a_route_falls_back_to_the_relay(market):
    provider, consumer, contract = market
    cid, _ = contract()
    tid = consumer.transfers.request(cid, path="push")
    ours = completed(provider, consumer, tid)
    assert consumer.transfers.get(tid).mode == "push" and provider.transfers.get(ours.id).mode == "push"
    cid2, _ = contract(rows=ROWS + 1)
    tid = consumer.transfers.request(cid2, path="push")
    consumer.transfers._server.stop()  # the consumer's data port cannot be reached from the provider
    ours = completed(provider, consumer, tid, timeout=90)
    assert consumer.transfers.get(tid).path == "relay"
    manifest, _ = consumer.transfers.manifest(tid)
    assert hashlib.sha256(received_bytes(consumer, tid)).hexdigest() == manifest["sha256"]


def test_a_push_is_refused_with_the_reason_on_both_sides(market):
    provider, consumer, contract = market
    cid, pid = contract("compute-only")
    with pytest.raises(DeliveryError) as refused:
        provider.transfers.push(pid)
    assert "computation" in refused.value.message("en") and "计算" in refused.value.message("zh_CN")
    cid, pid = contract()
    retire = "UPDATE contract_agreement SET status = 'retired' WHERE negotiation_id = ?"
    consumer.transfers.db.write(lambda c: c.execute(retire, (cid,)))  # the consumer's copy: retired, so it refuses
    tid = provider.transfers.push(pid)
    wait_for(lambda: provider.transfers.get(tid).state == "TERMINATED", 30, "the consumer's refusal")
    from appliance import i18n

    with i18n.using_lang("en"):
        assert "retired" in provider.transfers.get(tid).reason
    with i18n.using_lang("zh_CN"):
        assert "废止" in provider.transfers.get(tid).reason
    refusals = [e for e in consumer.evidence.entries() if e.action == "transfer.refused"]
    assert refusals and "retired" in refusals[-1].payload["reason"]
    assert consumer.transfers.received() == []
    with pytest.raises(DeliveryError):  # a consumer cannot push
        consumer.transfers.push(cid)


def test_a_push_withdrawn_before_the_consumer_answered_is_not_delivered(market):
    provider, consumer, contract = market
    cid, pid = contract()
    consumer.stop()  # offline: the offer waits for it
    tid = provider.transfers.push(pid)
    provider.transfers.cancel(tid)
    assert provider.transfers.get(tid).state == "TERMINATED"
    consumer.start()
    theirs = consumer_side(consumer, tid)  # its node answered the offer when it came back
    wait_for(lambda: consumer.transfers.get(theirs.id).state == "TERMINATED", 30, "the provider's refusal")
    from appliance import i18n

    with i18n.using_lang("en"):
        assert "withdrew" in consumer.transfers.get(theirs.id).reason
    assert consumer.transfers.received() == [] and provider.transfers.get(tid).state == "TERMINATED"


def _slow_link(provider) -> list[int]:
    """The provider serves a chunk each 30 ms, so a stop falls in the middle; the indexes served."""
    served: list[int] = []
    chunk = provider.transfers._chunk

    def slow(object_id, where, index):
        served.append(index)
        time.sleep(0.03)
        return chunk(object_id, where, index)

    provider.transfers._chunk = slow
    return served


def test_a_push_interrupted_by_the_consumer_stopping_goes_on_from_its_chunks(market):
    provider, consumer, contract = market
    cid, pid = contract(rows=250_000)  # about 10 MB: 75 chunks
    served = _slow_link(provider)
    tid = provider.transfers.push(pid)
    theirs = consumer_side(consumer, tid)
    wait_for(lambda: consumer.transfers.get(theirs.id).chunks_done > 0, 60, "the first chunks")
    consumer.stop()
    total = consumer.transfers.get(theirs.id).chunks_total
    kept = consumer.transfers.db.read(lambda c: {r[0] for r in c.execute(
        "SELECT idx FROM transfer_chunk WHERE transfer_id = ?", (theirs.id,))})
    assert 0 < len(kept) < total
    before = len(served)
    consumer.start()
    pushed(provider, consumer, tid, timeout=90)
    manifest, _ = consumer.transfers.manifest(theirs.id)
    assert hashlib.sha256(received_bytes(consumer, theirs.id)).hexdigest() == manifest["sha256"]
    assert set(served[before:]) == set(range(total)) - kept, "only what was missing went again"


def test_a_provider_restarted_in_the_middle_of_a_push_pushes_the_rest(market):
    provider, consumer, contract = market
    cid, pid = contract(rows=250_000)
    _slow_link(provider)
    tid = provider.transfers.push(pid)
    theirs = consumer_side(consumer, tid)
    wait_for(lambda: consumer.transfers.get(theirs.id).chunks_done > 0, 60, "the first chunks")
    provider.stop()
    assert provider.transfers.get(tid).state == "STARTED"
    assert 0 < consumer.transfers.get(theirs.id).chunks_done < consumer.transfers.get(theirs.id).chunks_total
    provider.start()  # it picks up its unfinished push
    pushed(provider, consumer, tid, timeout=90)
    assert consumer.transfers.get(theirs.id).path.startswith("direct:"), "still pushed, not relayed"
    manifest, _ = consumer.transfers.manifest(theirs.id)
    assert hashlib.sha256(received_bytes(consumer, theirs.id)).hexdigest() == manifest["sha256"]


def test_a_push_finds_the_consumer_by_discovery_when_the_address_in_its_request_does_not_answer(market):
    provider, consumer, contract = market
    cid, pid = contract()
    service = f"_dsn{secrets.token_hex(3)}._tcp.local."  # this test's own: parallel runs never mix
    for node in (provider, consumer):
        node.stop()  # the hosts start them again, found with zeroconf on 127.0.0.1
        node.peers.service_type = service
    hosts = [NodeHost(node, interfaces=("127.0.0.1",)) for node in (provider, consumer)]
    try:
        for host in hosts:
            host.start()
        wait_for(lambda: [p for p in provider.peers.peers() if p.did == consumer.identity.did and p.verified], 60,
                 "the provider to verify the consumer")
        consumer.transfers.host = "127.0.0.2"  # what its request names; its channel answers on 127.0.0.1 only
        tid = provider.transfers.push(pid)
        theirs = pushed(provider, consumer, tid)
        assert provider.transfers.get(tid).path == f"direct:127.0.0.2:{consumer.transfers.channel_port}"
        assert theirs.path.startswith("direct:"), "pushed over the address discovery found, not relayed"
        manifest, _ = consumer.transfers.manifest(theirs.id)
        assert hashlib.sha256(received_bytes(consumer, theirs.id)).hexdigest() == manifest["sha256"]
    finally:
        for host in hosts:
            host.stop()
