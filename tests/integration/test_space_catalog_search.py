"""Searching the cached space catalog offline: the same full-text index as the local catalog, so
two-character Chinese words, substrings and Latin words in any case are found, best match first,
and a removed entry is gone from the results."""

from appliance.services.sync import catalog_cache

SPACE = "s1"


def _entry(title, keywords=(), description=""):
    entry = {"@type": "Dataset", "dct:title": title, "dcat:keyword": list(keywords)}
    if description:
        entry["dct:description"] = description
    return {"entry": entry, "approval": None}


def _cache(node, provider, dataset, body, updated="2026-11-01T00:00:00Z"):
    node.store.db.write(lambda c: catalog_cache.upsert(c, SPACE, provider, dataset, body, f"m-{dataset}-{updated}",
                                                               updated))


def _search(node, query, space=SPACE):
    return [e.dataset_id for e in node.store.db.read(lambda c: catalog_cache.search(c, space, query))]


def test_space_catalog_search_finds_chinese_words_substrings_and_ranks_titles_first(node):
    _cache(node, "did:key:a", "ds-1", _entry("注塑机温度数据", ["注塑", "温度"]))
    _cache(node, "did:key:a", "ds-2", _entry("采购订单明细表", ["订单"], description="含注塑件的采购记录"))
    _cache(node, "did:key:b", "ds-3", _entry("Energy Meter Readings", ["energy"]))
    assert _search(node, "注塑") == ["ds-1", "ds-2"], "the title match ranks above the description match"
    assert _search(node, "订单明细") == ["ds-2"]
    assert _search(node, "ENERGY meter") == ["ds-3"]
    assert _search(node, "注塑 采购") == ["ds-2"], "every word must match"
    assert _search(node, "ds-3") == ["ds-3"], "the dataset id is searchable"
    assert _search(node, "不存在的词") == []
    _cache(node, "did:key:b", "ds-4", _entry("产线传感器数据 4"))
    assert _search(node, "传感器 4") == ["ds-4"], "a one-character word at the end of a title is found"
    assert _search(node, "注塑", space="other-space") == [], "each space is searched on its own"
    assert sorted(_search(node, "")) == ["ds-1", "ds-2", "ds-3", "ds-4"]


def test_an_updated_or_removed_entry_is_searched_as_it_is_now(node):
    _cache(node, "did:key:a", "ds-1", _entry("注塑机温度数据"))
    _cache(node, "did:key:a", "ds-1", _entry("冲压机振动数据"), updated="2026-11-02T00:00:00Z")
    assert _search(node, "注塑") == []
    assert _search(node, "冲压") == ["ds-1"]
    node.store.db.write(lambda c: catalog_cache.remove(c, SPACE, "did:key:a", "ds-1"))
    assert _search(node, "冲压") == []
    assert node.search.count(scope=catalog_cache.scope_of(SPACE)) == 0


def test_entries_cached_before_the_index_existed_are_indexed_when_sync_starts(node):
    body = _entry("注塑机温度数据", ["注塑"])
    node.store.db.write(lambda c: c.execute(
        "INSERT INTO space_catalog (space_id, provider, dataset_id, entry, msg_id, updated) VALUES (?, ?, ?, ?, ?, ?)",
        (SPACE, "did:key:a", "ds-old", catalog_cache.body_json(body), "m-old", "2026-10-01T00:00:00Z")))
    assert _search(node, "注塑") == [], "an older version cached it without indexing"
    node.sync.start()
    try:
        assert _search(node, "注塑") == ["ds-old"]
    finally:
        node.sync.stop()
    assert node.store.db.write(catalog_cache.index_missing) == 0, "indexing twice adds nothing"
