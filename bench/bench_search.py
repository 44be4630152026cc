"""Local search: FTS5 trigram index (with the two-character vocabulary path) against a naive LIKE scan.

A real encrypted store is filled with resources whose titles, descriptions, keywords and column
names mix Chinese and English the way an SME's catalog does; the triggers index them as they are
inserted (batches of 1,000 rows per transaction). Then a query mix (two-character Chinese words,
longer Chinese, English words, column names, several words, with and without filters) runs through
``SearchIndex.query`` and through a ``LIKE '%word%'`` scan over the same columns with the same
filters, interleaved query by query, several rounds; p50/p95 of each.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from appliance.services.catalog.search import SearchIndex
from appliance.storage import KdfParams, Store
from bench.harness import Result, percentile, rnd

DESCRIPTION = "catalog search p50/p95 over 100,000 resources (Chinese + English): FTS5 trigram vs a LIKE scan"

PLACES = ["上海", "苏州", "无锡", "嘉兴", "宁波", "合肥", "南通", "昆山", "松江", "浦东"]
SITES = ["一号工厂", "二车间", "总装线", "冲压车间", "物流中心", "门店", "仓库", "实验室", "分公司", "配送站"]
SUBJECTS = ["订单", "客户", "设备", "传感器", "库存", "发货", "质检", "能耗", "工单", "供应商", "产线", "车辆", "会员",
            "销售", "采购", "合同", "发票", "温度", "压力", "电量", "良品率", "排班", "维修", "物料", "批次", "退货"]
SHAPES = ["明细", "汇总", "统计", "读数", "档案", "记录", "报表", "台账", "日志", "清单", "分析", "快照"]
PERIODS = ["每日", "每小时", "实时", "月度", "季度", "年度", "历史", "每周"]
ENGLISH = ["order", "customer", "device", "sensor", "inventory", "shipment", "quality", "energy", "work order",
           "supplier", "production line", "vehicle", "member", "sales", "purchase", "contract", "invoice",
           "temperature", "pressure", "power", "yield", "shift", "maintenance", "material", "batch", "returns"]
COLUMNS = ["id", "order_id", "customer_name", "device_id", "sensor_id", "sku", "qty", "amount", "price", "ts",
           "created_at", "updated_at", "temp_c", "pressure_kpa", "kwh", "line_no", "shift", "operator", "batch_no",
           "supplier_code", "warehouse", "region", "status", "mobile", "email", "订单编号", "客户名称", "金额",
           "数量", "设备编号", "检验结果", "供应商名称", "仓库编码", "操作员", "备注"]
DOMAINS = ["制造", "物流", "零售", "能源", "金融", "医疗", "农业", "交通"]
KINDS = ["table", "table", "table", "sqlite_table", "file", "folder", "api"]
CATEGORIES = ["general"] * 8 + ["important"] * 2 + ["core"]

# (class, text, filters)
QUERIES = [
    ("zh2", "订单", {}), ("zh2", "客户", {}), ("zh2", "能耗", {}), ("zh2", "退货", {}), ("zh2", "台账", {}),
    ("zh_long", "订单明细", {}), ("zh_long", "传感器读数", {}), ("zh_long", "供应商档案", {}),
    ("zh_long", "上海一号工厂", {}),
    ("en", "temperature", {}), ("en", "invoice", {}), ("en", "warehouse", {}), ("en", "production line", {}),
    ("column", "customer_name", {}), ("column", "pressure_kpa", {}), ("column", "检验结果", {}),
    ("words", "订单 sales", {}), ("words", "设备 维修 记录", {}),
    ("filtered", "订单", {"domain": "制造"}), ("filtered", "温度", {"grade": "important"}),
    ("filtered", "客户", {"kind": "table", "domain": "零售"}), ("filtered", "invoice", {"grade": "core"}),
]


def _resource(rng: random.Random, i: int) -> tuple[tuple, tuple]:
    subject = rng.choice(SUBJECTS)
    english = ENGLISH[SUBJECTS.index(subject)]
    title = f"{rng.choice(PLACES)}{rng.choice(SITES)}{rng.choice(PERIODS)}{subject}{rng.choice(SHAPES)}"
    if rng.random() < 0.3:
        title += f" {english} data"
    other = rng.choice(SUBJECTS)
    description = (f"{rng.choice(PERIODS)}采集的{subject}数据，关联{other}{rng.choice(SHAPES)}，"
                   f"用于{rng.choice(['排产', '对账', '质量追溯', '能耗分析', '客户服务', '结算'])}。"
                   f" {english.capitalize()} records for {rng.choice(ENGLISH)} analysis.")
    keywords = json.dumps(rng.sample(SUBJECTS, 3) + [english], ensure_ascii=False)
    names = rng.sample(COLUMNS, rng.randint(5, 14))
    columns = json.dumps([{"name": c, "type": "text", "sensitive": False} for c in names], ensure_ascii=False)
    rid = f"urn:dsnode:resource:{i:08x}-0000-4000-8000-{rng.getrandbits(48):012x}"
    ts = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00.000Z"
    sensitivity = rng.choice([None, 1, 2, 2, 3, 4])
    resource = (rid, rng.choice(KINDS), title, description, keywords, rng.choice(DOMAINS), rng.choice(CATEGORIES),
                sensitivity, ts, ts, f"/data/{i}.csv")
    version = (rid, ts, f"/data/{i}.csv", 1000 + i, f"{i:064x}", i * 10, columns)
    return resource, version


def _fill(store: Store, n: int, say) -> float:
    rng = random.Random(2026)
    start = time.perf_counter()
    for base in range(0, n, 1000):
        batch = [_resource(rng, i) for i in range(base, min(n, base + 1000))]

        def work(conn, batch=batch):
            conn.executemany(
                "INSERT INTO resource (id, kind, mode, title, description, keywords, domain, category, sensitivity, "
                "current_version, created, updated, source) VALUES (?, ?, 'referenced', ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                [r for r, _ in batch])
            conn.executemany(
                "INSERT INTO resource_version "
                "(resource_id, version, created, source, size, sha256, row_count, columns) "
                "VALUES (?, 1, ?, ?, ?, ?, ?, ?)", [v for _, v in batch])

        store.db.write(work)
        if base and base % 20000 == 0:
            say(f"  {base:,} resources indexed…")
    return (time.perf_counter() - start) / n * 1e6


def _like(conn, text: str, filters: dict, limit: int | None = 20) -> list:
    """The naive search: every word as LIKE '%word%' over the same columns, same filters, newest first."""
    where, args = ["r.removed IS NULL"], []
    for word in text.lower().split():
        pattern = f"%{word}%"
        where.append("(r.title LIKE ? OR r.description LIKE ? OR r.keywords LIKE ? OR r.domain LIKE ? "
                     "OR v.columns LIKE ?)")
        args += [pattern] * 5
    if "domain" in filters:
        where.append("r.domain = ?")
        args.append(filters["domain"])
    grade = filters.get("grade")
    if grade in ("general", "important", "core"):
        where.append("r.category = ?")
        args.append(grade)
    elif grade:
        where.append("r.sensitivity = ?")
        args.append(int(grade))
    if "kind" in filters:
        where.append("r.kind = ?")
        args.append(filters["kind"])
    tables = ("FROM resource r JOIN resource_version v ON v.resource_id = r.id AND v.version = r.current_version "
              f"WHERE {' AND '.join(where)}")
    if limit is None:  # how many entries match at all
        return conn.execute(f"SELECT count(*) {tables}", args).fetchall()
    return conn.execute(f"SELECT r.id, r.title {tables} ORDER BY r.updated DESC LIMIT ?", [*args, limit]).fetchall()


def _measure(store: Store, rounds: int) -> tuple[dict, dict, dict]:
    index = SearchIndex(store.db)
    times: dict[str, dict[str, list[float]]] = {"search": {}, "like": {}}
    matches = {}
    for _, text, filters in QUERIES:  # warm the page cache for both, untimed; count what each query matches
        index.query(text, **filters)
        label = " ".join([text, *(f"{k}={v}" for k, v in filters.items())])
        matches[label] = store.db.read(lambda c, t=text, f=filters: _like(c, t, f, None))[0][0]
    for r in range(rounds):
        for i, (cls, text, filters) in enumerate(QUERIES):
            order = ("search", "like") if (i + r) % 2 == 0 else ("like", "search")
            for side in order:
                start = time.perf_counter()
                if side == "search":
                    index.query(text, **filters)
                else:
                    store.db.read(lambda c, t=text, f=filters: _like(c, t, f))
                times[side].setdefault(cls, []).append((time.perf_counter() - start) * 1000)
    return times["search"], times["like"], matches


def _stats(by_class: dict[str, list[float]]) -> dict:
    every = [x for xs in by_class.values() for x in xs]
    out = {"p50_ms": rnd(percentile(every, 50), 2), "p95_ms": rnd(percentile(every, 95), 2)}
    out["by_class_p50_ms"] = {k: rnd(percentile(v, 50), 2) for k, v in by_class.items()}
    return out


def run(quick: bool, say) -> Result:
    n = 10_000 if quick else 100_000
    rounds = 5 if quick else 7
    work = Path(tempfile.mkdtemp(prefix="dsnode-bench-search-"))
    try:
        store = Store.create(work / "node", b"benchmark passphrase", kdf=KdfParams.fast())
        try:
            say(f"indexing {n:,} resources (Chinese + English titles, descriptions, keywords, 5-14 columns each)…")
            insert_us = _fill(store, n, say)
            say(f"  {insert_us:.0f} µs per resource, index maintenance by triggers included")
            say(f"running {len(QUERIES)} queries × {rounds} rounds, search and LIKE interleaved…")
            search, like, matches = _measure(store, rounds)
        finally:
            store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    s, b = _stats(search), _stats(like)
    for cls in s["by_class_p50_ms"]:
        say(f"  {cls:<9} search p50 {s['by_class_p50_ms'][cls]:>8.2f} ms   "
            f"LIKE p50 {b['by_class_p50_ms'][cls]:>8.2f} ms")
    say(f"  all       search p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms;  "
        f"LIKE p50 {b['p50_ms']} ms, p95 {b['p95_ms']} ms")
    ratio = rnd(b["p50_ms"] / s["p50_ms"], 1)
    return Result(
        figures={"resources": n, "search": s, "insert_us_per_resource": rnd(insert_us, 0),
                 "matches_per_query": matches},
        baseline={"like_scan": b},
        ratio=ratio,
        target="search p95 <= 50 ms and faster than the LIKE scan (ratio = LIKE p50 / search p50)",
        met=s["p95_ms"] <= 50 and ratio > 1,
    )
