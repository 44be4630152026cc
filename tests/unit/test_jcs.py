"""Canonical JSON: RFC 8785 bytes, and integers a JavaScript peer would misread are refused."""

import hashlib

import pytest

from appliance.crypto.jcs import MAX_SAFE_INTEGER, canonical, sha256


def test_keys_sorted_and_no_whitespace():
    assert canonical({"b": [1, 2], "a": {"d": None, "c": True}}) == (
        b'{"a":{"c":true,"d":null},"b":[1,2]}'
    )


def test_rfc8785_number_and_string_forms():
    assert canonical([1.0, 1e21, 0.1, -0.0]) == b"[1,1e+21,0.1,0]"
    assert canonical("é\u2028\n") == '"é\u2028\\n"'.encode("utf-8")


def test_same_object_same_bytes_whatever_the_insertion_order():
    assert canonical({"x": 1, "y": 2}) == canonical({"y": 2, "x": 1})


def test_largest_safe_integers_pass():
    assert canonical([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]) == (
        b"[9007199254740991,-9007199254740991]"
    )


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**64])
def test_big_integer_anywhere_is_rejected_naming_where(value):
    with pytest.raises(ValueError, match=r"\$\.body\.sizes\[1\].*as a string"):
        canonical({"body": {"sizes": [1, value]}})


def test_big_integer_as_string_is_fine():
    assert canonical({"n": str(2**64)}) == b'{"n":"18446744073709551616"}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1: "x"}, b"raw"])
def test_values_json_cannot_carry_are_rejected(value):
    with pytest.raises(ValueError):
        canonical({"v": value})


def test_sha256():
    assert sha256(b"abc") == hashlib.sha256(b"abc").digest()


def _random_document(rng, depth=0):
    import string

    alphabet = string.printable + "\x00\x01\x1f\x7f\u2028\u2029éß中文数据\U0001F600\ud800"
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    if kind == 1:
        return rng.randrange(-(2**53) + 1, 2**53)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice([0.5, -1e-7, 1e21, 3.0, 123.456])
    if kind == 4:
        return [_random_document(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = ["a", "b", "B", "é", "中", "\u20ac", "\U0001F600", "\ufb33", "", "k\n"]
    return {rng.choice(keys) + str(rng.randrange(3)): _random_document(rng, depth + 1) for _ in range(rng.randrange(6))}


def test_the_fast_path_agrees_with_the_reference_implementation():
    import random

    import rfc8785

    from appliance.crypto.jcs import canonical

    def outcome(fn, doc):
        try:
            return fn(doc)
        except ValueError:
            return "refused"

    rng = random.Random(8785)
    refused = 0
    for _ in range(3000):
        doc = _random_document(rng)
        got = outcome(canonical, doc)
        assert got == outcome(rfc8785.dumps, doc), doc
        refused += got == "refused"
    assert 0 < refused < 1500  # both paths were exercised
