"""Sensitive-field validators (real check digits) and per-column detection."""

import random

import pytest

from appliance.domain.catalog import suggest_sensitivity
from appliance.services.catalog import sensitive as s


def make_id(rng: random.Random, region: str = "310115") -> str:
    year, month, day = rng.randrange(1950, 2010), rng.randrange(1, 13), rng.randrange(1, 29)
    body = f"{region}{year}{month:02d}{day:02d}{rng.randrange(1000):03d}"
    return body + s.cn_id_check_char(body)


def make_uscc(rng: random.Random) -> str:
    body = "91" + "310115" + "".join(rng.choice(s.USCC_CHARS) for _ in range(9))
    return body + s.uscc_check_char(body)


def make_card(rng: random.Random) -> str:
    body = "62" + "".join(str(rng.randrange(10)) for _ in range(15))
    return next(body + str(d) for d in range(10) if s.luhn_ok(body + str(d)))


# The two examples printed in GB 11643-1999 itself. By hand for the first: the digits weighted
# 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 sum to 167; 167 mod 11 = 2, and "10X98765432"[2] = "X".
STANDARD_IDS = ("11010519491231002X", "440524188001010014")


@pytest.mark.parametrize("value", STANDARD_IDS)
def test_the_identity_numbers_printed_in_the_standard_are_valid(value):
    assert s.is_cn_id(value)


def test_generated_identity_numbers_are_valid_and_any_changed_digit_is_caught():
    rng = random.Random(7)
    for _ in range(200):
        value = make_id(rng)
        assert s.is_cn_id(value)
        pos = rng.randrange(6, 17) if rng.random() < 0.5 else 17
        wrong = value[:pos] + str((int(value[pos]) + 1) % 10 if value[pos] != "X" else 0) + value[pos + 1:]
        assert not s.is_cn_id(wrong), wrong


@pytest.mark.parametrize("value", [
    "11010519491231002Y",  # not a check character
    "110105194902300021",  # 30 February
    "990105194912310021",  # no such province
    "1101051949123100",  # too short
    "abcdefghijklmnopqr",
])
def test_invalid_identity_numbers(value):
    assert not s.is_cn_id(value)


def test_legacy_15_digit_identity_numbers_check_region_and_date():
    assert s.is_cn_id("110105491231002")
    assert not s.is_cn_id("110105491331002")  # month 13


def test_uscc_check_character():
    # By hand for 91350100M000100Y4?: values 9 1 3 5 0 1 0 0 M=21 0 0 0 1 0 0 Y=30 4 with weights
    # 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28 sum to 1640; 1640 mod 31 = 28; 31 - 28 = 3.
    assert s.uscc_check_char("91350100M000100Y4") == "3"
    assert s.is_uscc("91350100M000100Y43")
    assert not s.is_uscc("91350100M000100Y44")
    assert not s.is_uscc("91350100I000100Y43")  # I is not in the code's alphabet
    rng = random.Random(3)
    for _ in range(100):
        assert s.is_uscc(make_uscc(rng))


def test_bank_cards_use_luhn():
    assert s.is_bank_card("4111111111111111")  # the well-known test card number
    assert not s.is_bank_card("4111111111111112")
    assert s.is_bank_card("6222 0212 3456 7890 128") is s.luhn_ok("6222021234567890128")
    rng = random.Random(5)
    for _ in range(50):
        card = make_card(rng)
        assert s.is_bank_card(card)
        assert not s.is_bank_card(card[:-1] + str((int(card[-1]) + 1) % 10))


@pytest.mark.parametrize("value,ok", [
    ("13812345678", True), ("+8613812345678", True), ("138-1234-5678", True), ("12812345678", False),
    ("1381234567", False), ("23812345678", False),
])
def test_mobile_numbers(value, ok):
    assert s.is_mobile(value) is ok


@pytest.mark.parametrize("value,ok", [
    ("zhang.san@example.com.cn", True), ("a+b@ex-ample.org", True), ("no-at.example.com", False),
    ("a@b", False), ("a@b.c", False),
])
def test_email(value, ok):
    assert s.is_email(value) is ok


@pytest.mark.parametrize("value,ok", [
    ("沪A12345", True), ("沪A·12345", True), ("粤B D12345".replace(" ", ""), True),  # new energy, small
    ("京A12345D", True),  # new energy, large
    ("粤BDF1234", True), ("粤BG123456", False), ("京I12345", False),  # no letter I
    ("AB12345", False), ("沪A1234", False),
])
def test_licence_plates(value, ok):
    assert s.is_license_plate(value) is ok


@pytest.mark.parametrize("value,ok", [
    ("192.168.1.20", True), ("2001:db8::1", True), ("::1", True), ("256.1.1.1", False), ("1.2.3", False),
    ("12", False),
])
def test_ip_addresses(value, ok):
    assert s.is_ip_address(value) is ok


@pytest.mark.parametrize("header,kind", [
    ("姓名", "person_name"), ("客户姓名", "person_name"), ("customer_name", "person_name"), ("product_name", None),
    ("身份证号", "cn_id"), ("id_card", "cn_id"), ("手机号码", "mobile"), ("联系电话", "phone"),
    ("clientIp", "ip_address"),
    ("收货地址", "address"), ("address", "address"), ("统一社会信用代码", "uscc"), ("车牌号", "license_plate"),
    ("金额", None), ("amount", None),
])
def test_header_keywords(header, kind):
    assert s.header_kind(header) == kind


def test_detection_reports_confidence_and_counts_never_values():
    rng = random.Random(1)
    values = [make_id(rng) for _ in range(8)] + ["not an id", "", "12345"]
    finding = s.detect_column("证件", values)
    assert finding.kind == "cn_id" and finding.sampled == 10 and finding.matched == 8
    assert finding.confidence == 0.8 and finding.by == "content"
    report = finding.to_json()
    assert not any(v in str(report) for v in values if v)


def test_content_needs_a_majority_without_a_header_hint():
    values = ["13812345678"] * 4 + ["hello"] * 6
    assert s.detect_column("remark", values) is None or s.detect_column("remark", values).embedded
    assert s.detect_column("手机", values).kind == "mobile"


def test_names_and_addresses_are_found_by_header_and_checked_for_plausibility():
    f = s.detect_column("联系人", ["张三", "李四四", "x1"])
    assert (f.kind, f.by, f.matched, f.sampled) == ("person_name", "header", 2, 3)
    f = s.detect_column("address", ["上海市浦东新区张江路1号", "广东省深圳市南山区", "n/a"])
    assert (f.kind, f.matched) == ("address", 2)


def test_phone_numbers_inside_free_text_are_reported_as_embedded():
    values = [f"请联系 1391234{i:04d} 安排发货" for i in range(3)] + ["无"] * 7
    f = s.detect_column("备注", values)
    assert f.kind == "mobile" and f.embedded and f.matched == 3


def test_an_18_digit_column_valid_as_both_id_and_card_is_taken_for_ids():
    rng = random.Random(11)
    ids = [make_id(rng) for _ in range(50)]
    assert s.detect_column("c", ids).kind == "cn_id"


def test_suggested_level_follows_the_most_sensitive_kind():
    assert suggest_sensitivity([]) == 2
    assert suggest_sensitivity(["uscc"]) == 2
    assert suggest_sensitivity(["mobile", "uscc"]) == 3
    assert suggest_sensitivity(["mobile", "cn_id"]) == 4


@pytest.mark.timeout(20)
def test_long_runs_of_letters_are_scanned_once_not_from_every_letter():
    """A free-text cell of 200,000 letters (no "@") took minutes: the e-mail search restarted at
    every letter. It is passed over in one go now, and real addresses in text are still found."""
    assert s.detect_column("备注", ["a" * 200_000] * 10) is None
    found = s.detect_column("备注", ["请联系 zhang.san@example.com 谢谢"] * 10)
    assert found is not None and found.kind == "email"
