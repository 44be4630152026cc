"""The flows every adapter drives (appliance/host/flows.py), without a terminal or Qt."""

from __future__ import annotations

import pytest

from appliance.errors import PassphraseMismatch, PassphraseTooShort
from appliance.host.flows import MIN_PASSPHRASE, check_new_passphrase, passphrase_strength


def test_a_new_passphrase_must_be_typed_the_same_twice_and_be_long_enough():
    assert check_new_passphrase("仓库口令 2026 春", "仓库口令 2026 春") == "仓库口令 2026 春".encode()
    with pytest.raises(PassphraseMismatch):
        check_new_passphrase("long enough one", "long enough two")
    with pytest.raises(PassphraseTooShort) as e:
        check_new_passphrase("short", "short")
    assert str(MIN_PASSPHRASE) in e.value.message("en")


@pytest.mark.parametrize(("text", "score"), [
    ("", 0), ("abc1234", 0), ("abcdefgh", 1), ("abcdefghijkl", 2), ("Abcdefgh12!x", 3),
    ("correct horse battery staple", 3), ("Correct horse battery 2026!", 4),
])
def test_the_strength_hint_grows_with_length_and_kinds_of_characters(text, score):
    assert passphrase_strength(text) == score
