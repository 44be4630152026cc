"""Local search on a real store: Chinese (two characters and longer), English, column names, filters,
and an index that follows resource changes made with plain SQL (the triggers keep it in sync)."""

import pytest

from appliance.services.catalog.search import MAX_TERMS, SearchIndex

from .resource_rows import add_resource, new_version, remove_resource, update_resource


@pytest.fixture
def catalog(node):
    ids = {
        "orders": add_resource(node, "采购订单明细表", description="每日采购订单，含供应商与金额",
                               keywords=["订单", "采购"],
                               domain="制造", columns=["order_id", "供应商名称", "金额"], category="important",
                               sensitivity=2),
        "sensors": add_resource(node, "设备传感器读数", description="Production line temperature readings every minute",
                                keywords=["sensor", "IoT"], domain="制造", kind="sqlite_table",
                                columns=["device_id", "temperature", "ts"]),
        "customers": add_resource(node, "客户档案", description="客户联系方式与订单历史", domain="销售", kind="file",
                                  columns=["customer_name", "mobile"], category="core", sensitivity=4),
        "report": add_resource(node, "Quarterly sales report", description="Sales by region, 按地区汇总", domain="销售",
                               kind="file"),
    }
    return ids


def refs(node, text, **kw):
    return [h.ref for h in node.search.query(text, **kw)]


def test_two_character_chinese_words_are_found(node, catalog):
    assert set(refs(node, "订单")) == {catalog["orders"], catalog["customers"]}
    assert refs(node, "档案") == [catalog["customers"]]  # the word ends the title: still found
    assert refs(node, "客户") == [catalog["customers"]]


def test_longer_chinese_and_mixed_queries(node, catalog):
    assert refs(node, "采购订单明细") == [catalog["orders"]]
    assert refs(node, "传感器 temperature") == [catalog["sensors"]]
    assert refs(node, "订单 不存在的词") == []


def test_english_words_ignore_case(node, catalog):
    assert refs(node, "TEMPERATURE") == [catalog["sensors"]]
    assert refs(node, "sales") == [catalog["report"]]
    assert refs(node, "iot") == [catalog["sensors"]]


def test_column_names_are_searchable_and_the_snippet_says_where(node, catalog):
    (hit,) = node.search.query("供应商名称")
    assert hit.ref == catalog["orders"] and hit.field == "columns" and hit.snippet == "order_id [供应商名称] 金额"
    (hit,) = node.search.query("device_id")
    assert hit.ref == catalog["sensors"] and "[device_id]" in hit.snippet


def test_title_matches_rank_above_description_matches(node, catalog):
    add_resource(node, "月度报表", description="本月订单合计")
    hits = node.search.query("订单")
    assert hits[0].ref == catalog["orders"] and hits[0].field == "title"
    assert {h.field for h in hits[1:]} == {"description"}


def test_filters_by_domain_grade_and_kind(node, catalog):
    assert set(refs(node, "订单", domain="制造")) == {catalog["orders"]}
    assert refs(node, "", grade="core") == [catalog["customers"]]
    assert refs(node, "", grade=2) == [catalog["orders"]]
    assert refs(node, "", kind="sqlite_table") == [catalog["sensors"]]
    assert set(refs(node, "", domain="销售", kind="file")) == {catalog["customers"], catalog["report"]}
    with pytest.raises(ValueError):
        node.search.query("", grade="secret")


def test_the_index_follows_resource_changes_made_with_plain_sql(node, catalog):
    update_resource(node, catalog["report"], title="年度销售报告", updated="2026-02-01T00:00:00.000Z")
    assert refs(node, "年度销售") == [catalog["report"]] and refs(node, "quarterly") == []
    new_version(node, catalog["sensors"], columns=["device_id", "humidity"])
    assert refs(node, "humidity") == [catalog["sensors"]]
    assert refs(node, "ts") == []  # the old version's column is gone from the index
    update_resource(node, catalog["orders"], category="core", updated="2026-02-02T00:00:00.000Z")
    assert catalog["orders"] in refs(node, "", grade="core")
    remove_resource(node, catalog["customers"])
    assert refs(node, "客户档案") == []


def test_products_are_indexed_with_their_resources_columns_and_grade(node, catalog):
    p = node.products.create(title="供应链分析包", description="订单与传感器联合分析", keywords=["供应链"],
                             domain="制造", resource_ids=[catalog["orders"], catalog["sensors"]])
    assert refs(node, "供应链", kind="product") == [p.id]
    assert refs(node, "temperature", kind="product") == [p.id]  # a column of one of its resources
    (hit,) = node.search.query("供应链分析", kind="product")
    assert hit.category == "important" and hit.sensitivity == 2 and hit.status == "draft"
    node.products.update(p.id, title="供应链联合分析包")
    assert node.search.query("联合分析包")[0].ref == p.id


def test_a_single_common_character_falls_back_to_a_scan(node):
    for i in range(MAX_TERMS + 5):
        add_resource(node, f"数{chr(0x4E00 + i)}资料")
    assert len(node.search.query("数", limit=1000)) == MAX_TERMS + 5
    assert len(node.search.query("资料", limit=5)) == 5


def test_other_features_index_their_own_entries_in_their_own_scope(node, catalog):
    def work(conn):
        SearchIndex.index_entry(conn, scope="space:demo", kind="dataset", ref="urn:dsnode:product:remote",
                                title="港口集装箱吞吐量", keywords=["物流"], columns=["port", "teu"], domain="物流")

    node.store.db.write(work)
    assert refs(node, "集装箱", scope="space:demo") == ["urn:dsnode:product:remote"]
    assert refs(node, "集装箱") == []  # not mixed into this node's own catalog
    assert node.store.db.write(lambda c: SearchIndex.remove_entry(c, "space:demo", "urn:dsnode:product:remote"))
    assert refs(node, "集装箱", scope="space:demo") == []
    with pytest.raises(ValueError):
        node.store.db.write(lambda c: SearchIndex.clear_scope(c, "local"))


def test_a_very_broad_query_ranks_its_newest_matches_and_still_filters(node):
    for i in range(6):
        add_resource(node, f"销售台账{i}", domain="零售" if i % 2 else "制造")
    narrow = SearchIndex(node.store.db, rank_window=3)
    hits = narrow.query("台账", limit=10)
    assert [h.title for h in hits] and {h.title for h in hits} <= {"销售台账5", "销售台账4", "销售台账3"}
    assert {h.title for h in narrow.query("台账", domain="零售")} == {"销售台账1", "销售台账3", "销售台账5"}


def test_resources_registered_through_the_resource_service_are_searchable(node, tmp_path):
    """The triggers follow what the resources feature writes, with no call into search code."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.csv").write_text("订单编号,客户名称,金额\nA001,示例制造,12.5\nA002,样例物流,8\n", encoding="utf-8")
    node.resources.allowed_roots = [data]
    rid = node.resources.register(data / "orders.csv", title="三月订单", domain="制造").resource.id
    (hit,) = node.search.query("客户名称")
    assert hit.ref == rid and hit.field == "columns" and hit.type == "table"
    assert refs(node, "订单", grade="core") == []
    node.resources.label(rid, category="core")
    assert refs(node, "订单", grade="core") == [rid]
    p = node.products.create(title="三月订单数据", resource_ids=[rid])
    assert [(r.resource_id, r.version) for r in p.resources] == [(rid, 1)]
    node.resources.remove(rid)
    assert refs(node, "订单", kind="resource") == []
    assert refs(node, "订单", kind="product") == [p.id]  # the product and its lineage stay
