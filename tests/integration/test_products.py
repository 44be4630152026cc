"""Data products on a real encrypted store: lineage, offers, lifecycle and listing, evidence for each step."""

import pytest

from appliance.domain.product import ListingRequested, ListingWithdrawn, ProductChanged
from appliance.errors import (ListingStateInvalid, NotInSpace, PolicyInvalid, ProductNotFound, ProductNotListed,
                              ProductNotReady, ResourceNotUsable)

from .resource_rows import add_resource, new_version, remove_resource


@pytest.fixture
def events(node):
    seen = []
    node.bus.subscribe(seen.append)
    return seen


@pytest.fixture
def resources(node):
    orders = add_resource(node, "采购订单明细", description="每日采购订单", keywords=["订单"], domain="制造",
                          columns=["order_id", "客户名称"], category="important", sensitivity=2)
    sensors = add_resource(node, "设备传感器读数", domain="制造", columns=["device_id", "temperature"])
    return orders, sensors


@pytest.fixture
def product(node, resources):
    return node.products.create(title="订单分析数据包", resource_ids=list(resources), keywords=["订单"],
                                offers=[node.products.offer_from_template("free-trial")])


def actions(node, subject):
    return [e.action for e in node.evidence.entries(subject=subject)]


def joined(node, *spaces):
    node.products.set_membership(lambda s: s in spaces)


def test_a_product_pins_the_current_resource_versions_and_lineage_reads_both_ways(node, resources):
    orders, sensors = resources
    assert new_version(node, orders, columns=["order_id", "客户名称", "金额"]) == 2
    p = node.products.create(title="订单分析", resource_ids=[orders, sensors.split(":")[-1][:8]])
    assert {(r.resource_id, r.version) for r in p.resources} == {(orders, 2), (sensors, 1)}
    assert {r.resource_id: r.columns for r in p.resources}[orders] == ("order_id", "客户名称", "金额")
    assert [(x.product_id, x.version) for x in node.products.lineage(orders)] == [(p.id, 2)]
    assert node.products.lineage(orders, version=1) == []
    assert {(r.resource_id, r.version) for r in node.products.derived_from(p.id)} == {(orders, 2), (sensors, 1)}


def test_repinning_makes_a_new_version_and_lineage_keeps_the_history(node, resources, product):
    orders, _ = resources
    new_version(node, orders)
    p2 = node.products.update(product.id, repin=True)
    assert p2.version == 2
    links = [(x.product_version, x.version, x.current) for x in node.products.lineage(orders)]
    assert links == [(1, 1, False), (2, 2, True)]
    assert {r.version for r in node.products.derived_from(product.id, version=1)} == {1}


def test_creating_a_product_writes_evidence_and_an_event(node, product, events):
    assert actions(node, product.id) == ["product.created", "offer.set"]
    created = next(node.evidence.entries(subject=product.id))
    assert created.payload["title"] == "订单分析数据包" and len(created.payload["resources"]) == 2
    assert product.status == "draft" and product.version == 1


@pytest.mark.parametrize("ref, words", [("urn:dsnode:resource:none", "no such resource"), ("", "no such resource")])
def test_a_missing_resource_is_refused_clearly(node, ref, words):
    with pytest.raises(ResourceNotUsable) as e:
        node.products.create(title="x", resource_ids=[ref or "zzzz"])
    assert words in e.value.message("en") and "本节点没有这个资源" in e.value.message("zh_CN")


def test_a_removed_resource_cannot_go_into_a_product_and_blocks_listing(node, resources, product):
    orders, _ = resources
    remove_resource(node, orders)
    with pytest.raises(ResourceNotUsable, match="removed"):
        node.products.create(title="x", resource_ids=[orders])
    joined(node, "space-a")
    with pytest.raises(ProductNotReady, match="was removed"):
        node.products.request_listing(product.id, "space-a")


def test_offers_are_validated_and_replacing_them_is_a_new_version_with_evidence(node, product):
    with pytest.raises(PolicyInvalid) as e:
        node.products.offer_from_jsonld({"permission": [{"action": "use"}], "prohibition": [{"action": "use"}]})
    assert "both permitted" in e.value.message("en") and "既被许可" in e.value.message("zh_CN")
    research = node.products.offer_from_template("research", {"days": "30"})
    p = node.products.set_offers(product.id, [research])
    assert p.version == 2 and [o.template for o in p.offers] == ["research"]
    p = node.products.add_offer(product.id, node.products.offer_from_template("per-use-paid", {"price": "2"}))
    assert [o.template for o in p.offers] == ["research", "per-use-paid"]
    assert actions(node, product.id)[-2:] == ["offer.set", "offer.set"]
    entry = list(node.evidence.entries(subject=product.id))[-1]
    assert [o["template"] for o in entry.payload["offers"]] == ["research", "per-use-paid"]


def test_listing_needs_membership_and_an_offer(node, resources, product):
    with pytest.raises(NotInSpace) as e:
        node.products.request_listing(product.id, "space-a")
    assert "space-a" in e.value.message("zh_CN")
    joined(node, "space-a")
    bare = node.products.create(title="无报价", resource_ids=[resources[0]])
    with pytest.raises(ProductNotReady, match="no offer"):
        node.products.request_listing(bare.id, "space-a")
    with pytest.raises(ProductNotFound):
        node.products.request_listing("urn:dsnode:product:nope", "space-a")


def test_the_lifecycle_draft_listed_updated_delisted_with_notice(node, clock, product, events):
    joined(node, "space-a", "space-b")
    listing = node.products.request_listing(product.id[-36:-28], "space-a")
    assert listing.status == "requested" and listing.version == 1
    (sent,) = [e for e in events if isinstance(e, ListingRequested)]
    assert sent.space_id == "space-a" and sent.dataset["@id"] == product.id and sent.dataset["hasPolicy"]
    assert node.products.get(product.id).status == "draft"

    node.products.mark_listing(product.id, "space-a", "listed")
    assert node.products.get(product.id).status == "listed"
    with pytest.raises(ListingStateInvalid) as e:  # already listed, unchanged
        node.products.request_listing(product.id, "space-a")
    assert "已上架" in e.value.message("zh_CN")

    events.clear()
    updated = node.products.update(product.id, description="新增三月数据")
    assert updated.status == "updated" and updated.version == 2
    (resent,) = [e for e in events if isinstance(e, ListingRequested)]
    assert resent.version == 2 and resent.dataset["dcat:version"] == "2"
    (listing,) = updated.listings
    assert listing.status == "requested" and listing.listed_version == 1  # version 1 still shows meanwhile
    node.products.mark_listing(product.id, "space-a", "listed", version=2)
    assert node.products.get(product.id).status == "listed"

    events.clear()
    clock.advance(3600)
    (done,) = node.products.delist(product.id, reason="数据停止更新", notice_days=14)
    assert done.status == "delisted" and done.notice_until == "2026-01-15T01:00:00.000Z"
    (withdrawn,) = [e for e in events if isinstance(e, ListingWithdrawn)]
    assert withdrawn.notice_until == done.notice_until and withdrawn.dataset["dct:valid"]["@value"] == done.notice_until
    assert node.products.get(product.id).status == "delisted"
    assert isinstance(events[-1], ProductChanged) and events[-1].status == "delisted"
    assert actions(node, product.id) == ["product.created", "offer.set", "product.listing_requested", "product.listed",
                                         "product.updated", "product.listing_requested", "product.listed",
                                         "product.delisted"]


def test_illegal_listing_steps_are_refused_and_change_nothing(node, product):
    joined(node, "space-a")
    with pytest.raises(ProductNotListed) as e:
        node.products.delist(product.id, reason="x")
    assert "nothing to delist" in e.value.message("en")
    with pytest.raises(ListingStateInvalid):  # an answer to a request never made
        node.products.mark_listing(product.id, "space-a", "listed")
    node.products.request_listing(product.id, "space-a")
    node.products.mark_listing(product.id, "space-a", "rejected", reason="缺少合规声明")
    with pytest.raises(ListingStateInvalid) as e:
        node.products.delist(product.id, "space-a", reason="x")
    assert "rejected" in e.value.message("en") and "未通过" in e.value.message("zh_CN")
    p = node.products.get(product.id)
    assert p.status == "draft" and p.listings[0].reason == "缺少合规声明"
    assert actions(node, product.id)[-2:] == ["product.listing_requested", "product.rejected"]


def test_taking_back_an_unanswered_request_needs_no_notice(node, clock, product):
    joined(node, "space-a")
    node.products.request_listing(product.id, "space-a")
    (done,) = node.products.delist(product.id, "space-a", reason="提交错了", notice_days=30)
    assert done.notice_until == "2026-01-01T00:00:00.000Z" and not done.visible(clock.now())
    assert node.products.get(product.id).status == "draft"


def test_a_stale_answer_changes_nothing(node, product):
    joined(node, "space-a")
    node.products.request_listing(product.id, "space-a")
    node.products.update(product.id, title="订单分析数据包（新）")
    listing = node.products.mark_listing(product.id, "space-a", "listed", version=1)
    assert listing.status == "requested" and listing.version == 2


def test_pending_requests_can_be_sent_again_after_a_restart(node, product):
    joined(node, "space-a")
    node.products.request_listing(product.id, "space-a")
    (pending,) = node.products.pending_requests()
    assert pending.space_id == "space-a" and pending.dataset["@id"] == product.id
