"""The provider's whole path across features: a registered file becomes a product, is listed in a
space, the operator approves it, and another member finds it in the space catalog."""

import csv

from tests.spaces import SPACE, SpaceHarness, wait_for


def test_a_registered_file_becomes_a_listed_product_another_member_can_find(tmp_path):
    harness = SpaceHarness(tmp_path / "space")
    try:
        provider, consumer = harness.member("provider"), harness.member("consumer")
        data = tmp_path / "data"
        data.mkdir()
        with open(data / "temps.csv", "w", newline="", encoding="gb18030") as f:
            writer = csv.writer(f)
            writer.writerow(["时间", "机台", "温度"])
            writer.writerows([f"2026-11-01T{i % 24:02d}:00:00", "注塑机1", 20 + i % 7] for i in range(50))
        provider.resources.allowed_roots = [data]
        resource = provider.resources.register(str(data / "temps.csv"), title="注塑机温度").resource
        offer = provider.products.offer_from_template("free-trial")
        product = provider.products.create(title="注塑机温度数据", resource_ids=[resource.id], offers=[offer])

        provider.products.request_listing(product.id, SPACE)
        pending = wait_for(lambda: harness.operator.operator.listings("pending"), what="the listing request")
        assert consumer.sync.catalog(SPACE) == [], "nothing is visible before the operator approves"
        harness.operator.operator.approve_listing(pending[0].id)

        entries = wait_for(lambda: consumer.sync.catalog(SPACE), what="the entry in the consumer's catalog")
        assert [e.dataset_id for e in entries] == [product.id]
        wait_for(lambda: [l for l in provider.products.listings() if l.status == "listed"],
                 what="the provider to see its product listed")
        assert [p.product_id for p in provider.products.lineage(resource.id)] == [product.id]
    finally:
        harness.close()
