"""A store at the desktop app's scale, built fast: 10,000 resources and 100,000 evidence entries.

One small CSV is registered through the core (a real scan, version, samples and evidence entry);
the other resources, registered in the seconds before it, are rows of the same shape (their own
id, title, source and time) written with the core's own row writers and evidence appends, thousands
to a transaction, as the registrations would have written them. The rest of the log is contract
and transfer steps, as a busy node collects.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path

from appliance.clock import rfc3339
from appliance.domain.catalog import RESOURCE_URN, ResourceAction
from appliance.services.catalog import resource_store
from appliance.services.evidence import append_entry

BATCH = 2000
ACTIONS = ("contract.requested", "contract.finalized", "transfer.requested", "transfer.started", "transfer.completed")
NAMES = ("采购订单明细", "产线传感器读数", "质检报告", "客户档案", "库存流水", "设备维保记录", "能耗月报", "物流运单")


def seed_csv(folder: Path) -> Path:
    path = folder / "采购订单明细.csv"
    path.write_text("order_id,customer,phone,amount\n" + "".join(
        f"{i},客户{i % 97},138{i:08d},{i % 1000}.50\n" for i in range(50)), encoding="utf-8")
    return path


def fill(node, folder: Path, *, resources: int = 10_000, evidence: int = 100_000, say=lambda _t: None) -> None:
    """Grow ``node``'s register to ``resources`` and its log to at least ``evidence`` entries."""
    folder.mkdir(parents=True, exist_ok=True)
    node.resources.allowed_roots = [*node.resources.allowed_roots, folder.resolve()]
    base = node.clock.now() - timedelta(milliseconds=resources)  # one a millisecond, before the seed's
    first = node.resources.register(seed_csv(folder))
    template, version = first.resource, first.version
    did = node.identity.did
    made = 1
    while made < resources:
        count = min(BATCH, resources - made)

        def work(conn, start=made, count=count) -> None:
            for i in range(start, start + count):
                ts = rfc3339(base + timedelta(milliseconds=i))
                rid = RESOURCE_URN + str(uuid.uuid4())
                source = f"{template.source}#{i}"
                r = dataclasses.replace(template, id=rid, title=f"{NAMES[i % len(NAMES)]}-{i:05d}", source=source,
                                        created=ts, updated=ts)
                resource_store.insert_resource(conn, r)
                resource_store.insert_version(conn, dataclasses.replace(version, resource_id=rid, created=ts,
                                                                        source=source), None)
                append_entry(conn, ts=ts, actor=did, action=ResourceAction.REGISTERED, subject=rid,
                             payload={"title": r.title, "source": source, "version": 1})

        node.store.db.write(work)
        made += count
        say(f"  {made:,} resources")
    size = node.evidence.size()
    while size < evidence:
        count = min(5 * BATCH, evidence - size)

        def usage(conn, start=size, count=count) -> None:
            ts = rfc3339(node.clock.now())
            for i in range(start, start + count):
                append_entry(conn, ts=ts, actor=did, action=ACTIONS[i % len(ACTIONS)],
                             subject=f"urn:dsnode:agreement:{i % 1000}", payload={"step": i})

        node.store.db.write(usage)
        size += count
        say(f"  {size:,} evidence entries")
