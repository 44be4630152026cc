"""Data delivery under a finalized contract between two members of a real space (mosquitto, the
operator, members): pulled directly over the encrypted channel or pushed by the provider to the
consumer's channel, relayed through the broker, falling back by itself, resumed after an
interruption, refused when the agreement does not permit it, a folder as many objects, and a
delivery between two network namespaces joined by a veth pair."""

from __future__ import annotations

import csv
import hashlib
import secrets
import time

import pytest

from appliance.errors import DeliveryError
from appliance.host import NodeHost
from appliance.operator.broker_config import ListenerConfig
from appliance.operator.space import Policies
from appliance.services.delivery.manifest import Layout
from tests.brokers import Mosquitto, free_port
from tests.netns import netns_pair  # noqa: F401 - a fixture
from tests.spaces import SPACE, SpaceHarness, finalized, wait_for

pytestmark = pytest.mark.slow

ROWS = 40000  # about 1.6 MB: a dozen chunks


@pytest.fixture
def market(space, tmp_path):
    """A provider with a listed product (a CSV whose phone column is masked) and a consumer that sees it."""
    provider, consumer = space.member("provider"), space.member("consumer")
    data = tmp_path / "data"
    data.mkdir()
    provider.resources.allowed_roots = [data]
    resources: dict[int, str] = {}

    def resource(rows: int) -> str:
        if rows not in resources:
            with open(data / f"line3-{rows}.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["time", "machine", "temperature", "phone"])
                w.writerows([f"2026-11-01T{i % 24:02d}:{i % 60:02d}:00", f"M{i % 7}", 20 + i % 9, f"1380013{i:04d}"]
                            for i in range(rows))
            r = provider.resources.register(str(data / f"line3-{rows}.csv"), title="Line 3", mode="hosted").resource
            provider.resources.set_masking(r.id, [{"column": "phone", "rule": "mask", "keep_first": 3,
                                                   "keep_last": 2}])
            resources[rows] = r.id
        return resources[rows]

    def product(template: str, rows: int):
        offer = provider.products.offer_from_template(template)
        p = provider.products.create(title=f"Line 3 ({template})", resource_ids=[resource(rows)], offers=[offer])
        provider.products.request_listing(p.id, SPACE)
        pending = wait_for(lambda: [r for r in space.operator.operator.listings("pending") if r.dataset_id == p.id],
                           what="the listing request")
        space.operator.operator.approve_listing(pending[0].id)
        wait_for(lambda: [e for e in consumer.sync.catalog(SPACE) if e.dataset_id == p.id], what="the catalog entry")
        provider.contracts.add_rule({"dataset": p.id})
        return p

    def contract(template: str = "free-trial", rows: int = ROWS) -> tuple[str, str]:
        p = product(template, rows)
        cid = consumer.contracts.request(SPACE, p.id)
        return cid, finalized(provider, consumer, cid)

    return provider, consumer, contract


def _received_bytes(consumer, transfer_id: str) -> bytes:
    (item,) = [r for r in consumer.transfers.received() if r.transfer_id == transfer_id]
    return b"".join(consumer.transfers.open_received(item.object_id))


def _completed(provider, consumer, tid: str, timeout: float = 60):
    wait_for(lambda: consumer.transfers.get(tid).state in ("COMPLETED", "TERMINATED"), timeout, "the consumer's end")
    assert consumer.transfers.get(tid).state == "COMPLETED", consumer.transfers.timeline(tid)
    ours = wait_for(lambda: [t for t in provider.transfers.list() if t.peer_pid == tid], what="the provider's side")[0]
    wait_for(lambda: provider.transfers.get(ours.id).state == "COMPLETED", timeout, "the provider to see the receipt")
    return ours


def test_a_finalized_contract_delivers_the_masked_data_directly_with_manifest_receipt_and_record(market, space):
    provider, consumer, contract = market
    cid, pid = contract()
    tid = consumer.transfers.request(cid)
    ours = _completed(provider, consumer, tid)
    data = _received_bytes(consumer, tid)
    rows = list(csv.reader(data.decode("utf-8").splitlines()))
    assert rows[0] == ["time", "machine", "temperature", "phone"] and len(rows) == ROWS + 1
    assert rows[1][3] == "138******00" or rows[1][3].startswith("138") and "*" in rows[1][3], rows[1]
    assert not any(r[3] == f"1380013{i:04d}" for i, r in enumerate(rows[1:])), "no phone number in clear"
    assert consumer.transfers.get(tid).path.startswith("direct:")
    manifest, _ = consumer.transfers.manifest(tid)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and manifest["masked"] is True
    receipt, _ = provider.transfers.receipt(ours.id)
    assert receipt["sha256"] == manifest["sha256"] and receipt["consumer"] == consumer.identity.did
    wait_for(lambda: space.operator.operator.deliveries(), what="the operator's delivery record")
    (record,) = space.operator.operator.deliveries()
    assert (record.provider, record.consumer, record.transfer_id) == (provider.identity.did, consumer.identity.did,
                                                                      ours.id)
    assert [e.action for e in consumer.evidence.entries() if e.subject == tid] == [
        "transfer.requested", "transfer.started", "data.received", "transfer.completed"]
    assert "transfer.receipt_filed" in [e.action for e in provider.evidence.entries() if e.subject == ours.id]
    assert not (consumer.home / "incoming").exists() or not any((consumer.home / "incoming").iterdir())


def test_the_relay_path_through_the_broker_delivers_the_same_bytes(market):
    provider, consumer, contract = market
    cid, _ = contract()
    tid = consumer.transfers.request(cid, path="relay")
    _completed(provider, consumer, tid, timeout=90)
    assert consumer.transfers.get(tid).path == "relay"
    manifest, _ = consumer.transfers.manifest(tid)
    assert hashlib.sha256(_received_bytes(consumer, tid)).hexdigest() == manifest["sha256"]


def test_without_a_direct_route_the_consumer_falls_back_to_the_relay_by_itself(market):
    provider, consumer, contract = market
    cid, _ = contract()
    provider.transfers._server.stop()  # the provider's data port is not reachable (a firewall, another site)
    tid = consumer.transfers.request(cid)
    _completed(provider, consumer, tid, timeout=90)
    assert consumer.transfers.get(tid).path == "relay"


def test_a_compute_only_agreement_is_refused_with_the_reason(market):
    provider, consumer, contract = market
    cid, _ = contract("compute-only")
    with pytest.raises(DeliveryError) as refused:
        consumer.transfers.request(cid)
    assert "computation" in refused.value.message("en") and "计算" in refused.value.message("zh_CN")


def test_an_interrupted_transfer_resumes_from_the_chunks_it_has(market):
    provider, consumer, contract = market
    cid, _ = contract(rows=250_000)  # about 10 MB: 75 chunks
    seen = []
    stop_at = 3

    def on_progress(e):
        if type(e).__name__ == "TransferProgress":
            seen.append(e.chunks_done)

    consumer.bus.subscribe(on_progress)
    consumer.transfers.relay_only = True  # chunks one by one, so the stop falls in the middle
    tid = consumer.transfers.request(cid)
    wait_for(lambda: any(n >= stop_at for n in seen), 60, "a few chunks")
    consumer.stop()
    kept = consumer.transfers.get(tid).chunks_done
    assert 0 < kept < consumer.transfers.get(tid).chunks_total
    consumer.start()
    _completed(provider, consumer, tid, timeout=90)
    manifest, _ = consumer.transfers.manifest(tid)
    assert hashlib.sha256(_received_bytes(consumer, tid)).hexdigest() == manifest["sha256"]
    assert min(n for n in seen if n > kept) == kept + 1, "it went on from the chunks it kept"


def test_sensitive_columns_without_a_masking_decision_are_not_delivered(market, space, tmp_path):
    provider, consumer, contract = market
    cid, _ = contract()
    rid = provider.products.get(consumer.contracts.get(cid).dataset_id).resources[0].resource_id
    provider.resources.set_masking(rid, [])  # the phone column is flagged, and now nobody decided
    tid = consumer.transfers.request(cid)
    wait_for(lambda: consumer.transfers.get(tid).state == "TERMINATED", 30, "the refusal")
    reason = consumer.transfers.get(tid).reason
    assert "phone" in reason and "keep" in reason, reason
    from appliance import i18n

    with i18n.using_lang("zh_CN"):  # a reason of ours reaches the consumer as a code: shown in its language
        assert "脱敏" in consumer.transfers.get(tid).reason
    assert consumer.transfers.received() == []
    provider.resources.set_masking(rid, [{"column": "phone", "rule": "keep"}])  # a decision: deliver in clear
    tid = consumer.transfers.request(cid)
    _completed(provider, consumer, tid)
    assert b"13800130000" in _received_bytes(consumer, tid)


# --- push: the provider delivers, connecting to the consumer's data channel ----------------------


def _consumer_side(consumer, provider_tid: str, timeout: float = 30):
    """The consumer's transfer of a push the provider started as ``provider_tid``."""
    return wait_for(lambda: [t for t in consumer.transfers.list() if t.peer_pid == provider_tid], timeout,
                    "the consumer's side of the push")[0]


def _pushed(provider, consumer, provider_tid: str, timeout: float = 60):
    wait_for(lambda: provider.transfers.get(provider_tid).state in ("COMPLETED", "TERMINATED"), timeout,
             "the provider's end of the push")
    assert provider.transfers.get(provider_tid).state == "COMPLETED", provider.transfers.timeline(provider_tid)
    theirs = _consumer_side(consumer, provider_tid)
    assert consumer.transfers.get(theirs.id).state == "COMPLETED"
    return theirs


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
    theirs = _pushed(provider, consumer, tid)
    assert provider.identity.did in connected, "the provider connected to the consumer"
    assert (theirs.mode, provider.transfers.get(tid).mode) == ("push", "push")
    assert theirs.path.startswith("direct:") and provider.transfers.get(tid).path.startswith("direct:")
    data = _received_bytes(consumer, theirs.id)
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
    ours = _completed(provider, consumer, tid)
    assert consumer.transfers.get(tid).mode == "push" and provider.transfers.get(ours.id).mode == "push"
    cid2, _ = contract(rows=ROWS + 1)
    tid = consumer.transfers.request(cid2, path="push")
    consumer.transfers._server.stop()  # the consumer's data port cannot be reached from the provider
    ours = _completed(provider, consumer, tid, timeout=90)
    assert consumer.transfers.get(tid).path == "relay"
    manifest, _ = consumer.transfers.manifest(tid)
    assert hashlib.sha256(_received_bytes(consumer, tid)).hexdigest() == manifest["sha256"]


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
    theirs = _consumer_side(consumer, tid)  # its node answered the offer when it came back
    wait_for(lambda: consumer.transfers.get(theirs.id).state == "TERMINATED", 30, "the provider's refusal")
    from appliance import i18n

    with i18n.using_lang("en"):
        assert "withdrew" in consumer.transfers.get(theirs.id).reason
    assert consumer.transfers.received() == [] and provider.transfers.get(tid).state == "TERMINATED"


def test_a_push_interrupted_by_the_consumer_stopping_goes_on_from_its_chunks(market):
    provider, consumer, contract = market
    cid, pid = contract(rows=250_000)  # about 10 MB: 75 chunks
    served = []
    chunk = provider.transfers._chunk

    def slow(object_id, where, index):  # a slow link, so the stop falls in the middle
        served.append(index)
        time.sleep(0.03)
        return chunk(object_id, where, index)

    provider.transfers._chunk = slow
    tid = provider.transfers.push(pid)
    theirs = _consumer_side(consumer, tid)
    wait_for(lambda: consumer.transfers.get(theirs.id).chunks_done > 0, 60, "the first chunks")
    consumer.stop()
    total = consumer.transfers.get(theirs.id).chunks_total
    kept = consumer.transfers.db.read(lambda c: {r[0] for r in c.execute(
        "SELECT idx FROM transfer_chunk WHERE transfer_id = ?", (theirs.id,))})
    assert 0 < len(kept) < total
    before = len(served)
    consumer.start()
    _pushed(provider, consumer, tid, timeout=90)
    manifest, _ = consumer.transfers.manifest(theirs.id)
    assert hashlib.sha256(_received_bytes(consumer, theirs.id)).hexdigest() == manifest["sha256"]
    assert set(served[before:]) == set(range(total)) - kept, "only what was missing went again"


def test_a_provider_restarted_in_the_middle_of_a_push_pushes_the_rest(market):
    provider, consumer, contract = market
    cid, pid = contract(rows=250_000)
    chunk = provider.transfers._chunk

    def slow(object_id, where, index):
        time.sleep(0.03)
        return chunk(object_id, where, index)

    provider.transfers._chunk = slow
    tid = provider.transfers.push(pid)
    theirs = _consumer_side(consumer, tid)
    wait_for(lambda: consumer.transfers.get(theirs.id).chunks_done > 0, 60, "the first chunks")
    provider.stop()
    assert provider.transfers.get(tid).state == "STARTED"
    assert 0 < consumer.transfers.get(theirs.id).chunks_done < consumer.transfers.get(theirs.id).chunks_total
    provider.start()  # it picks up its unfinished push
    _pushed(provider, consumer, tid, timeout=90)
    assert consumer.transfers.get(theirs.id).path.startswith("direct:"), "still pushed, not relayed"
    manifest, _ = consumer.transfers.manifest(theirs.id)
    assert hashlib.sha256(_received_bytes(consumer, theirs.id)).hexdigest() == manifest["sha256"]


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
        theirs = _pushed(provider, consumer, tid)
        assert provider.transfers.get(tid).path == f"direct:127.0.0.2:{consumer.transfers.channel_port}"
        assert theirs.path.startswith("direct:"), "pushed over the address discovery found, not relayed"
        manifest, _ = consumer.transfers.manifest(theirs.id)
        assert hashlib.sha256(_received_bytes(consumer, theirs.id)).hexdigest() == manifest["sha256"]
    finally:
        for host in hosts:
            host.stop()


# --- many objects under one manifest ---------------------------------------------------------------


def test_a_folder_and_a_product_of_several_resources_arrive_as_objects_of_one_manifest(market, space, tmp_path):
    provider, consumer, contract = market
    folder = tmp_path / "data" / "line4"
    (folder / "sensors").mkdir(parents=True)
    files = {"readme.txt": "第四产线 / line 4\n".encode() * 10, "sensors/a.bin": bytes(range(256)) * 1500,
             "sensors/empty.dat": b"", "sensors/b.bin": b"\x07" * 300_000}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    rid = provider.resources.register(str(folder), title="Line 4", mode="hosted").resource.id
    offer = provider.products.offer_from_template("free-trial")
    p = provider.products.create(title="Line 4 files", resource_ids=[rid], offers=[offer])
    provider.products.request_listing(p.id, SPACE)
    pending = wait_for(lambda: [r for r in space.operator.operator.listings("pending") if r.dataset_id == p.id])
    space.operator.operator.approve_listing(pending[0].id)
    wait_for(lambda: [e for e in consumer.sync.catalog(SPACE) if e.dataset_id == p.id], what="the catalog entry")
    provider.contracts.add_rule({"dataset": p.id})
    cid = consumer.contracts.request(SPACE, p.id)
    finalized(provider, consumer, cid)
    tid = consumer.transfers.request(cid)
    _completed(provider, consumer, tid)
    manifest, _ = consumer.transfers.manifest(tid)
    assert manifest["v"] == 2 and sorted(o["name"] for o in manifest["objects"]) == sorted(files)
    got = {r.name: r for r in consumer.transfers.received() if r.transfer_id == tid}
    assert sorted(got) == sorted(files)
    for name, data in files.items():
        assert b"".join(consumer.transfers.open_received(got[name].object_id)) == data, name
        assert got[name].sha256 == hashlib.sha256(data).hexdigest() and got[name].size == len(data)
    assert manifest["size"] == sum(map(len, files.values()))

    # several resources: a folder per resource, the masked table as CSV
    table = provider.products.get(consumer.contracts.get(contract()[0]).dataset_id).resources[0].resource_id
    both = provider.products.create(title="Line 3 and 4", resource_ids=[table, rid],
                                    offers=[provider.products.offer_from_template("free-trial")])
    provider.products.request_listing(both.id, SPACE)
    pending = wait_for(lambda: [r for r in space.operator.operator.listings("pending") if r.dataset_id == both.id])
    space.operator.operator.approve_listing(pending[0].id)
    wait_for(lambda: [e for e in consumer.sync.catalog(SPACE) if e.dataset_id == both.id], what="the catalog entry")
    provider.contracts.add_rule({"dataset": both.id})
    cid = consumer.contracts.request(SPACE, both.id)
    finalized(provider, consumer, cid)
    tid = consumer.transfers.request(cid, path="relay")
    _completed(provider, consumer, tid, timeout=90)
    items = [r for r in consumer.transfers.received() if r.transfer_id == tid]
    tables = [r for r in items if r.name.endswith("-Line_3/line3-40000.csv")]
    folder_files = sorted(r.name.split("-Line_4/", 1)[1] for r in items if "-Line_4/" in r.name)
    assert len(tables) == 1 and folder_files == sorted(files) and len(items) == 1 + len(files), [r.name for r in items]
    assert sorted(r.part for r in items) == list(range(len(items)))
    (csv_item,) = tables
    rows = b"".join(consumer.transfers.open_received(csv_item.object_id)).decode().splitlines()
    assert len(rows) == ROWS + 1 and "13800130000" not in rows[1]


def _folder_contract(provider, consumer, space, folder, files: dict[str, bytes]) -> str:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    rid = provider.resources.register(str(folder), title=folder.name, mode="hosted").resource.id
    p = provider.products.create(title=folder.name, resource_ids=[rid],
                                 offers=[provider.products.offer_from_template("free-trial")])
    provider.products.request_listing(p.id, SPACE)
    pending = wait_for(lambda: [r for r in space.operator.operator.listings("pending") if r.dataset_id == p.id])
    space.operator.operator.approve_listing(pending[0].id)
    wait_for(lambda: [e for e in consumer.sync.catalog(SPACE) if e.dataset_id == p.id], what="the catalog entry")
    provider.contracts.add_rule({"dataset": p.id})
    cid = consumer.contracts.request(SPACE, p.id)
    finalized(provider, consumer, cid)
    return cid


def test_an_object_that_does_not_match_its_manifest_entry_is_fetched_again_alone(market, space, tmp_path):
    provider, consumer, contract = market
    files = {"one.bin": b"\x01" * 400_000, "two.bin": b"\x02" * 300_000, "three.bin": b"\x03" * 200_000}
    cid = _folder_contract(provider, consumer, space, tmp_path / "data" / "batch", files)
    served = []
    chunk = provider.transfers._chunk
    provider.transfers._chunk = lambda object_id, where, i: served.append(i) or chunk(object_id, where, i)
    staged = consumer.transfers.receiver.staging.chunks
    spoilt = []

    def damaged(transfer_id, where, indexes=None):  # one object's bytes go bad on the disk, once
        k = where.object_of(indexes[0]) if indexes else None
        for data in staged(transfer_id, where, indexes):
            if where.objects[k]["name"] == "two.bin" and not spoilt:
                spoilt.append(k)
                data = b"\xff" + data[1:]
            yield data

    consumer.transfers.receiver.staging.chunks = damaged
    tid = consumer.transfers.request(cid)
    _completed(provider, consumer, tid)
    where = Layout(consumer.transfers.manifest(tid)[0])
    (k,) = spoilt
    again = [i for i in served if served.count(i) > 1]
    assert set(again) == set(where.chunks_of(k)), "only the damaged object went again"
    got = {r.name: r for r in consumer.transfers.received() if r.transfer_id == tid}
    assert all(b"".join(consumer.transfers.open_received(got[n].object_id)) == d for n, d in files.items())


# --- between two network namespaces joined by a veth pair -----------------------------------------


class _SpaceOnVeth(SpaceHarness):
    """The space with its broker and operator in namespace 0, listening on its veth address too."""

    def __init__(self, root, host: str) -> None:
        self.root, self.port, self.nodes = root, free_port(), []
        self.operator = self._node("operator", "运营方")
        self.operator.operator.create_space(space_id=SPACE, name="测试空间", broker_host=host, broker_port=self.port,
                                            policies=Policies(auto_admit=True))
        files = self.operator.operator.write_broker_config(root / "broker", ListenerConfig(port=self.port))
        listener = f"listener {self.port} 127.0.0.1"  # and the veth address (plain MQTT: a test's own link)
        text = files[0].read_text().replace(listener, f"{listener}\nlistener {self.port} {host}")
        self.broker = Mosquitto(root / "broker", config_text=text, port=self.port)
        self.operator.start()


def _serve_on(node, address: str) -> None:
    node.transfers.stop()  # serve the data channel on the namespace's veth address
    node.transfers.host = address
    node.transfers.start()


def test_a_delivery_between_two_network_namespaces_goes_directly_over_the_veth_pair(netns_pair, tmp_path):  # noqa: F811
    a, b = netns_pair.addresses
    space = netns_pair.run(0, _SpaceOnVeth, tmp_path / "space", a)
    try:
        provider = netns_pair.run(0, space.member, "provider")
        consumer = netns_pair.run(1, space.member, "consumer")
        netns_pair.run(0, _serve_on, provider, a)
        netns_pair.run(1, _serve_on, consumer, b)
        data = tmp_path / "data"
        data.mkdir()
        blob = bytes(range(256)) * 20_000  # 5 MB: 40 chunks
        (data / "line5.bin").write_bytes(blob)
        provider.resources.allowed_roots = [data]
        rid = provider.resources.register(str(data / "line5.bin"), title="Line 5", mode="hosted").resource.id
        p = provider.products.create(title="Line 5", resource_ids=[rid],
                                     offers=[provider.products.offer_from_template("free-trial")])
        provider.products.request_listing(p.id, SPACE)
        space.operator.operator.approve_listing(wait_for(lambda: space.operator.operator.listings("pending"))[0].id)
        wait_for(lambda: consumer.sync.catalog(SPACE), 30, "the catalog entry across the veth pair")
        provider.contracts.add_rule({"dataset": p.id})
        cid = consumer.contracts.request(SPACE, p.id)
        pid = finalized(provider, consumer, cid)
        tid = consumer.transfers.request(cid)  # pull: the consumer (10.77.0.2) connects to the provider
        _completed(provider, consumer, tid)
        assert consumer.transfers.get(tid).path == f"direct:{a}:{provider.transfers.channel_port}"
        assert _received_bytes(consumer, tid) == blob
        pushed = provider.transfers.push(pid)  # push: the provider (10.77.0.1) connects to the consumer
        theirs = _pushed(provider, consumer, pushed)
        assert provider.transfers.get(pushed).path == f"direct:{b}:{consumer.transfers.channel_port}"
        assert theirs.path.startswith("direct:") and _received_bytes(consumer, theirs.id) == blob
    finally:
        space.close()
