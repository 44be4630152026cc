"""Data delivery under a finalized contract between two members of a real space (mosquitto, the
operator, members): pulled directly over the encrypted channel, relayed through the broker,
falling back by itself, resumed after an interruption, refused when the agreement does not permit
it; a folder and a product of several resources as many objects of one manifest; a delivery between
two network namespaces joined by a veth pair. Push: test_delivery_push.py."""

from __future__ import annotations

import csv
import hashlib
import os
import time

import pytest

from appliance.errors import DeliveryError
from appliance.operator.broker_config import ListenerConfig
from appliance.operator.space import Policies
from appliance.services.delivery.manifest import Layout
from tests.brokers import Mosquitto, free_port
from tests.deliveries import ROWS, completed, contract_for, market, pushed, received_bytes, register_folder
from tests.netns import netns_pair  # noqa: F401 - a fixture
from tests.spaces import SPACE, SpaceHarness, finalized, wait_for

pytestmark = pytest.mark.slow
__all__ = ["market"]  # a fixture


def test_a_finalized_contract_delivers_the_masked_data_directly_with_manifest_receipt_and_record(market, space):
    provider, consumer, contract = market
    cid, pid = contract()
    tid = consumer.transfers.request(cid)
    ours = completed(provider, consumer, tid)
    data = received_bytes(consumer, tid)
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
    completed(provider, consumer, tid, timeout=90)
    assert consumer.transfers.get(tid).path == "relay"
    manifest, _ = consumer.transfers.manifest(tid)
    assert hashlib.sha256(received_bytes(consumer, tid)).hexdigest() == manifest["sha256"]


def test_without_a_direct_route_the_consumer_falls_back_to_the_relay_by_itself(market):
    provider, consumer, contract = market
    cid, _ = contract()
    provider.transfers._server.stop()  # the provider's data port is not reachable (a firewall, another site)
    tid = consumer.transfers.request(cid)
    completed(provider, consumer, tid, timeout=90)
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
    send_lane = provider.sync.send_lane

    def slowly(*frame):  # a slow route through the broker: the stop falls in the middle
        time.sleep(0.02)
        return send_lane(*frame)

    provider.sync.send_lane = slowly
    tid = consumer.transfers.request(cid)
    wait_for(lambda: any(n >= stop_at for n in seen), 60, "a few chunks")
    consumer.stop()
    kept = consumer.transfers.get(tid).chunks_done
    assert 0 < kept < consumer.transfers.get(tid).chunks_total
    consumer.start()
    completed(provider, consumer, tid, timeout=90)
    manifest, _ = consumer.transfers.manifest(tid)
    assert hashlib.sha256(received_bytes(consumer, tid)).hexdigest() == manifest["sha256"]
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
    completed(provider, consumer, tid)
    assert b"13800130000" in received_bytes(consumer, tid)


# --- many objects under one manifest ---------------------------------------------------------------


def test_a_folder_and_a_product_of_several_resources_arrive_as_objects_of_one_manifest(market, space, tmp_path):
    provider, consumer, contract = market
    files = {"readme.txt": "第四产线 / line 4\n".encode() * 10, "sensors/a.bin": bytes(range(256)) * 1500,
             "sensors/empty.dat": b"", "sensors/b.bin": b"\x07" * 300_000}
    rid = register_folder(provider, tmp_path / "data" / "Line 4", files)
    cid, _ = contract_for(space, provider, consumer, [rid], "Line 4 files")
    tid = consumer.transfers.request(cid)
    completed(provider, consumer, tid)
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
    cid, _ = contract_for(space, provider, consumer, [table, rid], "Line 3 and 4")
    tid = consumer.transfers.request(cid, path="relay")
    completed(provider, consumer, tid, timeout=90)
    items = [r for r in consumer.transfers.received() if r.transfer_id == tid]
    tables = [r for r in items if r.name.endswith("-Line_3/line3-40000.csv")]
    folder_files = sorted(r.name.split("-Line_4/", 1)[1] for r in items if "-Line_4/" in r.name)
    assert len(tables) == 1 and folder_files == sorted(files) and len(items) == 1 + len(files), [r.name for r in items]
    assert sorted(r.part for r in items) == list(range(len(items)))
    (csv_item,) = tables
    rows = b"".join(consumer.transfers.open_received(csv_item.object_id)).decode().splitlines()
    assert len(rows) == ROWS + 1 and "13800130000" not in rows[1]


def test_chunks_that_come_in_order_go_into_the_vault_as_they_arrive(market, space, tmp_path):
    """Finishing a direct delivery reads nothing back from staging: the objects were written while
    the chunks arrived, and they open as what was sent."""
    provider, consumer, contract = market
    files = {"one.bin": os.urandom(3_000_000), "empty.bin": b"", "two.bin": os.urandom(100_000)}
    rid = register_folder(provider, tmp_path / "data" / "inorder", files)
    cid, _ = contract_for(space, provider, consumer, [rid], "in order")
    read_back = []
    staged = consumer.transfers.receiver.staging.chunks
    consumer.transfers.receiver.staging.chunks = lambda *a, **k: read_back.append(a) or staged(*a, **k)
    tid = consumer.transfers.request(cid)
    completed(provider, consumer, tid)
    assert not read_back, "finishing read the staged chunks back"
    got = {r.name: r for r in consumer.transfers.received() if r.transfer_id == tid}
    assert {n: b"".join(consumer.transfers.open_received(got[n].object_id)) for n in files} == files
    assert not consumer.transfers.receiver.staging.path(tid).exists(), "staging is gone"


def test_a_hosted_file_is_sent_from_its_own_vault_object(market, space, tmp_path):
    """No copy of the payload is made: the provider's transfer names the hosted copy itself."""
    provider, consumer, contract = market
    data = os.urandom(2_500_000)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "hosted.bin").write_bytes(data)
    r = provider.resources.register(str(tmp_path / "data" / "hosted.bin"), title="hosted", mode="hosted").resource
    cid, _ = contract_for(space, provider, consumer, [r.id], "hosted")
    tid = consumer.transfers.request(cid)
    completed(provider, consumer, tid)
    assert received_bytes(consumer, tid) == data
    (mine,) = [t for t in provider.transfers.list() if t.peer_pid == tid]
    assert mine.object_id == provider.resources.version(r.id, 1).vault_object


def test_a_referenced_file_is_sent_from_its_source_and_a_change_there_ends_the_delivery(market, space, tmp_path):
    """A referenced file is hashed, not copied into the vault; a chunk read from a source changed
    since then is not sent: the delivery ends with the reason, and nothing is received."""
    provider, consumer, contract = market
    data = os.urandom(3_000_000)
    path = tmp_path / "data" / "referenced.bin"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    r = provider.resources.register(str(path), title="referenced", kind="file").resource
    cid, _ = contract_for(space, provider, consumer, [r.id], "referenced")
    tid = consumer.transfers.request(cid)
    completed(provider, consumer, tid)
    assert received_bytes(consumer, tid) == data
    (mine,) = [t for t in provider.transfers.list() if t.peer_pid == tid]
    assert mine.object_id.startswith("source:")

    read = provider.transfers._sources.read

    def changing(source, where, index):
        if index == 1:
            with open(path, "r+b") as f:  # same size, and the time it had
                f.seek(where.offset(1))
                f.write(b"\0" * 10)
            os.utime(path, ns=(path.stat().st_atime_ns, r_mtime))
        return read(source, where, index)

    r_mtime = path.stat().st_mtime_ns
    provider.transfers._sources.read = changing
    again = consumer.transfers.request(cid)
    wait_for(lambda: consumer.transfers.get(again).state == "TERMINATED", 60, "the end")
    assert str(r.id) in (consumer.transfers.get(again).reason or "")
    assert not [x for x in consumer.transfers.received() if x.transfer_id == again]


def test_an_object_that_does_not_match_its_manifest_entry_is_fetched_again_alone(market, space, tmp_path):
    provider, consumer, contract = market
    files = {"one.bin": b"\x01" * 400_000, "two.bin": b"\x02" * 300_000, "three.bin": b"\x03" * 200_000}
    rid = register_folder(provider, tmp_path / "data" / "batch", files)
    cid, _ = contract_for(space, provider, consumer, [rid], "batch")
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
    consumer.transfers.receiver.staging.in_order = None  # the staged way (chunks that did not come in order)
    tid = consumer.transfers.request(cid)
    completed(provider, consumer, tid)
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
        completed(provider, consumer, tid)
        assert consumer.transfers.get(tid).path == f"direct:{a}:{provider.transfers.channel_port}"
        assert received_bytes(consumer, tid) == blob
        push_tid = provider.transfers.push(pid)  # push: the provider (10.77.0.1) connects to the consumer
        theirs = pushed(provider, consumer, push_tid)
        assert provider.transfers.get(push_tid).path == f"direct:{b}:{consumer.transfers.channel_port}"
        assert theirs.path.startswith("direct:") and received_bytes(consumer, theirs.id) == blob
    finally:
        space.close()
