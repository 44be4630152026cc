"""Profiling math on small tables whose answers are known."""

import random

import pytest

from appliance.services.catalog.profiling import DuplicateRows, HashSample, TableProfiler, WEIGHTS

ROWS = [
    # id, name, amount, day, ok
    ["1", "张三", "10.5", "2026-01-05", "是"],
    ["2", "李四", "", "2026-02-30", "否"],  # empty amount; 30 February is not a date
    ["2", "李四", "", "2026-02-30", "否"],  # duplicate of the row above
    ["3", "", "abc", "2025-12-31", "是"],  # empty name; amount not a number
    ["4", "王五", "-3", "2026-03-01", "NULL"],
]


@pytest.fixture
def profile():
    p = TableProfiler(["id", "name", "amount", "day", "ok"])
    p.add_rows(ROWS[:2])
    p.add_rows(ROWS[2:])  # two batches: results must not depend on batching
    return p.finish()


def test_types_nulls_distinct_and_ranges(profile):
    cols = {c.name: c for c in profile.columns}
    assert [cols[n].type for n in ("id", "name", "amount", "day", "ok")] == \
        ["integer", "text", "text", "date", "boolean"]
    assert (cols["id"].min, cols["id"].max, cols["id"].distinct) == ("1", "4", 4)
    assert (cols["name"].nulls, cols["amount"].nulls, cols["ok"].nulls) == (1, 2, 1)
    assert cols["day"].valid == 0.6  # 3 of 5 are real calendar dates
    assert (cols["day"].min, cols["day"].max) == ("2025-12-31", "2026-03-01")
    assert profile.time_range == {"column": "day", "min": "2025-12-31", "max": "2026-03-01"}


def test_quality_scores(profile):
    q = profile.quality
    cells, nulls = 25, 4
    assert q["completeness"] == round(1 - nulls / cells, 4)
    # valid non-empty values: id 5, name 4 (text), amount 3 (text), day 3 of 5, ok 4 → 19 of 21
    assert q["validity"] == round(19 / 21, 4)
    assert q["duplicate_rows"] == 1 and q["uniqueness"] == 0.8
    assert q["integrity"] == 1.0
    expected = 100 * (WEIGHTS["completeness"] * (1 - 4 / 25) + WEIGHTS["validity"] * 19 / 21
                      + WEIGHTS["uniqueness"] * 0.8 + WEIGHTS["integrity"] * 1.0)
    assert q["score"] == round(expected, 1)
    assert q["rows"] == q["profiled_rows"] == 5 and not q["sampled"]


def test_skipped_rows_lower_integrity():
    p = TableProfiler(["a"])
    p.add_rows([["1"], ["2"], ["3"]])
    q = p.finish(total_rows=3, skipped_rows=1).quality
    assert q["integrity"] == 0.75 and q["skipped_rows"] == 1


def test_a_sampled_profile_says_so():
    p = TableProfiler(["a"])
    p.add_rows([["1"]])
    q = p.finish(total_rows=1000).quality
    assert q["sampled"] and q["rows"] == 1000 and q["profiled_rows"] == 1


def test_numbers_with_leading_zeros_or_too_many_digits_are_codes_not_numbers():
    p = TableProfiler(["zip", "id"])
    p.add_rows([["007", "110105194912310021"], ["010", "440524188001010014"]])
    assert [c.type for c in p.finish().columns] == ["text", "text"]


def test_distinct_counts_are_exact_up_to_the_cap_then_estimated():
    h = HashSample(cap=1000)
    h.add({f"v{i}" for i in range(800)})
    assert h.count() == 800 and not h.estimated
    for start in range(800, 100_000, 5000):
        h.add({f"v{i}" for i in range(start, start + 5000)})
    assert h.estimated and 0.8 * 100_800 < h.count() < 1.25 * 100_800
    assert len(h.hashes) <= 1000


def test_duplicate_estimate_beyond_the_cap():
    rng = random.Random(4)
    d = DuplicateRows(cap=2000)
    uniques = [rng.getrandbits(63) for _ in range(50_000)]
    d.add(uniques)
    d.add(uniques[:10_000])  # 10 000 duplicates
    assert d.estimated and 7_000 < d.duplicates < 13_000
    assert len(d.seen) <= 2000


def test_the_sensitive_scan_reservoir_is_bounded():
    p = TableProfiler(["a"], reservoir=50)
    for start in range(0, 20_000, 1000):
        p.add_columns([[str(i) for i in range(start, start + 1000)]])
    values = list(map(int, p.finish().values[0]))
    assert 25 <= len(values) <= 50 and len(set(values)) == len(values)
    assert min(values) < 1_000 and max(values) > 18_000  # spread over the whole table, start to end
