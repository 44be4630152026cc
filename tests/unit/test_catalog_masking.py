"""Masking rules as data and the streaming engine."""

from datetime import date, datetime

import pytest

from appliance.errors import InvalidMaskingRule
from appliance.services.catalog import masking as m

KEY_A, KEY_B = b"a" * 32, b"b" * 32
COLUMNS = ["name", "mobile", "id_no", "day", "amount", "address", "note", "secret"]
ROW = ["张三", "13812345678", "11010519491231002X", "2026-03-14", "1234.5", "广东省深圳市南山区科技园1号",
       "一段很长的备注文字", "s3cr3t"]


def test_mask_keeps_first_and_last():
    assert m.mask("13812345678", 3, 4) == "138****5678"
    assert m.mask("张三", 1) == "张*"
    assert m.mask("abc", 2, 2) == "a**"  # too short to keep both: only the first character stays
    assert m.mask("x", 1, 1) == "*"
    assert m.mask("secret", 0, 0, "#") == "######"


def test_generalise_dates_numbers_and_regions():
    assert m.to_month("2026-03-14") == m.to_month("2026/3/14") == m.to_month(date(2026, 3, 14)) == "2026-03"
    assert m.to_month(datetime(2026, 3, 14, 9)) == "2026-03" and m.to_month("20260314") == "2026-03"
    assert m.to_year("2026年3月14日") == "2026"
    assert m.to_month("not a date") == m.to_month("2026-13-01") == "*"
    assert m.to_range(1234.5, 1000) == "1000~2000" and m.to_range("-5", 10) == "-10~0"
    assert m.to_range("1,250", 100) == "1200~1300" and m.to_range("abc") == "*"
    assert m.to_range(0.25, 0.5) == "0~0.5"
    assert m.to_region("广东省深圳市南山区科技园") == "广东省深圳市"
    assert m.to_region("广东深圳市南山区") == "广东省深圳市"
    assert m.to_region("上海市浦东新区张江路") == m.to_region("上海浦东") == "上海市"
    assert m.to_region("新疆维吾尔自治区伊犁哈萨克自治州伊宁市") == "新疆维吾尔自治区伊犁哈萨克自治州"
    assert m.to_region("广东省深圳市南山区", "province") == "广东省"
    assert m.to_region("310115") == "310100" and m.to_region("310115", "province") == "310000"
    assert m.to_region("杭州市西湖区") == "杭州市" and m.to_region("Main Street 5") == "*"


def test_the_engine_applies_every_rule_and_drops_columns():
    rules = [
        {"column": "name", "rule": "mask", "keep_first": 1},
        {"column": "mobile", "rule": "mask", "keep_first": 3, "keep_last": 4},
        {"column": "id_no", "rule": "pseudonymise", "length": 12, "prefix": "p_"},
        {"column": "day", "rule": "generalise", "to": "month"},
        {"column": "amount", "rule": "generalise", "to": "range", "width": 1000},
        {"column": "address", "rule": "generalise", "to": "city"},
        {"column": "note", "rule": "truncate", "length": 4},
        {"column": "secret", "rule": "drop"},
    ]
    masker = m.Masker(COLUMNS, rules, pseudonym_key=KEY_A)
    assert masker.columns == COLUMNS[:-1]
    out = masker.row(ROW)
    assert out[:2] == ["张*", "138****5678"]
    assert out[2].startswith("p_") and len(out[2]) == 14 and "1101" not in out[2]
    assert out[3:] == ["2026-03", "1000~2000", "广东省深圳市", "一段很长"]


def test_pseudonyms_are_stable_within_an_agreement_and_differ_across():
    rules = [{"column": "id_no", "rule": "pseudonymise"}]
    a1 = m.Masker(COLUMNS, rules, pseudonym_key=KEY_A).row(ROW)[2]
    a2 = m.Masker(COLUMNS, rules, pseudonym_key=KEY_A).row(ROW)[2]
    b = m.Masker(COLUMNS, rules, pseudonym_key=KEY_B).row(ROW)[2]
    assert a1 == a2 != b
    with pytest.raises(InvalidMaskingRule):
        m.Masker(COLUMNS, rules)  # no agreement key


def test_empty_values_stay_empty_and_replace_works():
    masker = m.Masker(["a", "b"], [{"column": "a", "rule": "replace", "value": "[隐藏]"},
                                   {"column": "b", "rule": "mask", "keep_first": 1}])
    assert masker.row(["x", None]) == ["[隐藏]", None]
    assert masker.row(["", ""]) == ["", ""]


def test_apply_is_lazy_so_memory_does_not_grow_with_the_rows():
    def endless():
        i = 0
        while True:
            yield [f"1381234{i % 10000:04d}"]
            i += 1

    stream = m.apply(endless(), [{"column": "m", "rule": "mask", "keep_first": 3, "keep_last": 4}], columns=["m"])
    assert next(stream) == ["138****0000"] and next(stream) == ["138****0001"]


@pytest.mark.parametrize("rule", [
    {"column": "a", "rule": "scramble"},
    {"rule": "mask"},
    {"column": "a", "rule": "mask", "keep_first": -1},
    {"column": "a", "rule": "mask", "keep_first": "3"},
    {"column": "a", "rule": "mask", "keep_first": True},
    {"column": "a", "rule": "mask", "char": "**"},
    {"column": "a", "rule": "generalise", "to": "street"},
    {"column": "a", "rule": "generalise", "to": "range", "width": 0},
    {"column": "a", "rule": "pseudonymise", "length": 4},
    {"column": "a", "rule": "drop", "value": "x"},
    "mask a",
])
def test_invalid_rules_say_what_is_wrong(rule):
    with pytest.raises(InvalidMaskingRule) as bad:
        m.parse_rule(rule)
    zh = bad.value.message("zh_CN")
    assert zh.startswith("脱敏规则无效：") and "{" not in zh and "not" not in zh.split("：", 1)[1], zh


def test_rules_name_existing_columns_once():
    with pytest.raises(InvalidMaskingRule, match="no column") as unknown:
        m.Masker(["a"], [{"column": "b", "rule": "drop"}])
    assert "没有列 b" in unknown.value.message("zh_CN")
    with pytest.raises(InvalidMaskingRule, match="more than one"):
        m.parse_rules([{"column": "a", "rule": "drop"}, {"column": "a", "rule": "truncate"}])


def test_rules_round_trip_as_json():
    rule = m.parse_rule({"column": "a", "rule": "mask", "keep_last": 4, "keep_first": 3})
    assert m.parse_rule(rule.to_json()) == rule


def test_preview_shows_before_and_after():
    p = m.preview(COLUMNS, [ROW, ROW, ROW], [{"column": "secret", "rule": "drop"}], n=2)
    assert len(p.rows) == 2 and p.rows[0][0] == ROW and p.rows[0][1] == ROW[:-1]
    assert p.columns_after == COLUMNS[:-1]
