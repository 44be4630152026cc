"""A market for delivery tests (tests/integration/test_delivery*.py): a provider with listed products
of a masked CSV, a consumer that sees them, contracts finalized by a rule; and the waits and reads
those tests share."""

from __future__ import annotations

import csv

import pytest

from tests.spaces import SPACE, finalized, wait_for

ROWS = 40000  # about 1.6 MB: a dozen chunks through the broker, two on the direct path


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

    def contract(template: str = "free-trial", rows: int = ROWS) -> tuple[str, str]:
        return contract_for(space, provider, consumer, [resource(rows)], f"Line 3 ({template})", template)

    return provider, consumer, contract


def contract_for(space, provider, consumer, resource_ids: list[str], title: str,
                 template: str = "free-trial") -> tuple[str, str]:
    """``resource_ids`` listed as a product (approved), a contract for it finalized by a rule: the
    consumer's and the provider's negotiation ids."""
    p = provider.products.create(title=title, resource_ids=resource_ids,
                                 offers=[provider.products.offer_from_template(template)])
    provider.products.request_listing(p.id, SPACE)
    pending = wait_for(lambda: [r for r in space.operator.operator.listings("pending") if r.dataset_id == p.id],
                       what="the listing request")
    space.operator.operator.approve_listing(pending[0].id)
    wait_for(lambda: [e for e in consumer.sync.catalog(SPACE) if e.dataset_id == p.id], what="the catalog entry")
    provider.contracts.add_rule({"dataset": p.id})
    cid = consumer.contracts.request(SPACE, p.id)
    return cid, finalized(provider, consumer, cid)


def register_folder(provider, folder, files: dict[str, bytes]) -> str:
    """``files`` written under ``folder`` and registered as one hosted folder resource: its id."""
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return provider.resources.register(str(folder), title=folder.name, mode="hosted").resource.id


def received_bytes(consumer, transfer_id: str) -> bytes:
    (item,) = [r for r in consumer.transfers.received() if r.transfer_id == transfer_id]
    return b"".join(consumer.transfers.open_received(item.object_id))


def completed(provider, consumer, tid: str, timeout: float = 60):
    """Wait for the consumer's transfer ``tid`` to complete at both ends: the provider's side."""
    wait_for(lambda: consumer.transfers.get(tid).state in ("COMPLETED", "TERMINATED"), timeout, "the consumer's end")
    assert consumer.transfers.get(tid).state == "COMPLETED", consumer.transfers.timeline(tid)
    ours = wait_for(lambda: [t for t in provider.transfers.list() if t.peer_pid == tid], what="the provider's side")[0]
    wait_for(lambda: provider.transfers.get(ours.id).state == "COMPLETED", timeout, "the provider to see the receipt")
    return ours


def consumer_side(consumer, provider_tid: str, timeout: float = 30):
    """The consumer's transfer of a push the provider started as ``provider_tid``."""
    return wait_for(lambda: [t for t in consumer.transfers.list() if t.peer_pid == provider_tid], timeout,
                    "the consumer's side of the push")[0]


def pushed(provider, consumer, provider_tid: str, timeout: float = 60):
    wait_for(lambda: provider.transfers.get(provider_tid).state in ("COMPLETED", "TERMINATED"), timeout,
             "the provider's end of the push")
    assert provider.transfers.get(provider_tid).state == "COMPLETED", provider.transfers.timeline(provider_tid)
    theirs = consumer_side(consumer, provider_tid)
    assert consumer.transfers.get(theirs.id).state == "COMPLETED"
    return theirs
