"""`dsnode demo`, delivery: node A makes a product of a small CSV (the operator column masked),
the operator lists it, node B's contract for it is finalized by A's rule, and the data moves from
A to B over the encrypted channel, with progress, the signed manifest, B's receipt and the
operator's delivery record."""

from __future__ import annotations

import csv
from pathlib import Path

from appliance import i18n
from edge.demo_contracts import wait_for

t = i18n.t


def run_delivery_demo(space_id: str, operator, a, b, step, workdir: Path) -> None:
    step(t("demo.delivery.step", a.identity.name, b.identity.name))
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    with open(data / "line3.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["time", "machine", "temperature", "operator"])
        w.writerows([f"2026-11-01T{i % 24:02d}:00", f"M{i % 4}", 60 + i % 9, f"张{i % 30}"] for i in range(20000))
    a.resources.allowed_roots = [data]
    r = a.resources.register(str(data / "line3.csv"), title=t("demo.delivery.title"), mode="hosted").resource
    a.resources.set_masking(r.id, [{"column": "operator", "rule": "pseudonymise"}])
    product = a.products.create(title=t("demo.delivery.title"), resource_ids=[r.id],
                                offers=[a.products.offer_from_template("free-trial")])
    a.products.request_listing(product.id, space_id)
    pending = wait_for(lambda: [q for q in operator.operator.listings("pending") if q.dataset_id == product.id])
    if not pending:
        print(t("demo.space.timeout"))
        return
    operator.operator.approve_listing(pending[0].id)
    if not wait_for(lambda: [e for e in b.sync.catalog(space_id) if e.dataset_id == product.id]):
        print(t("demo.space.timeout"))
        return
    a.contracts.add_rule({"dataset": product.id})
    cid = b.contracts.request(space_id, product.id)
    if not wait_for(lambda: b.contracts.get(cid).state == "FINALIZED"):
        print(t("demo.space.timeout"))
        return
    print(t("demo.delivery.contract", b.identity.name, a.identity.name, cid))
    shown: list[int] = []

    def on_progress(event) -> None:
        if type(event).__name__ == "TransferProgress" and event.chunks_done not in shown:
            shown.append(event.chunks_done)
            print(t("demo.delivery.progress", event.chunks_done, event.chunks_total, event.bytes_done), flush=True)

    stop = b.bus.subscribe(on_progress)
    try:
        tid = b.transfers.request(cid)
        done = wait_for(lambda: b.transfers.get(tid).state in ("COMPLETED", "TERMINATED"), timeout=60)
    finally:
        stop()
    tr = b.transfers.get(tid)
    if not done or tr.state != "COMPLETED":
        print(t("demo.delivery.failed", tr.reason or tr.state))
        return
    manifest, _ = b.transfers.manifest(tid)
    receipt, _ = b.transfers.receipt(tid)
    print(t("demo.delivery.manifest", a.identity.name, manifest["size"], tr.chunks_total,
            manifest["sha256"][:16], ", ".join(manifest["maskingRules"])))
    print(t("demo.delivery.receipt", b.identity.name, receipt["received"]))
    path = t("transfer.path.direct") if (tr.path or "").startswith("direct") else t("transfer.path.relay")
    print(t("demo.delivery.path", path))
    first = b"".join(b.transfers.open_received(b.transfers.received()[-1].object_id)).decode().splitlines()[1]
    print(t("demo.delivery.sample", first))
    if wait_for(lambda: operator.operator.deliveries()):
        record = operator.operator.deliveries()[-1]
        print(t("demo.delivery.record", record.provider, record.consumer, record.receipt["size"]))
    else:
        print(t("demo.space.timeout"))
