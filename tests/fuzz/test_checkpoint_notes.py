"""Signed checkpoint notes as witnesses and peers send them: any text, or a genuine note with a
few characters changed, opens only when untouched and is refused with MalformedMessage or
BadSignature otherwise."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appliance.crypto import checkpoint as notes
from appliance.crypto.keys import SigningKey
from appliance.errors import BadSignature, MalformedMessage
from tests.fuzz.values import text
from tests.fuzzing import fuzz

KEY = SigningKey.from_seed(bytes(range(32)))
NAME = "dsnode.example/log"
GENUINE = notes.sign_note(notes.Checkpoint(NAME, 42, bytes(range(32)), ("extra line",)).body(), NAME, bytes(range(32)))
VERIFIERS = notes.verifiers_from_keys([notes.verifier_key(NAME, KEY.public_key)])
pieces = st.sampled_from(["\n", "\n\n", "— ", "—", " ", "+", "\x00", "\ud800", "=", "9" * 30, "A" * 100, "é"]) | text


def _opened_or_refused(note: object) -> None:
    try:
        checkpoint, signers = notes.open_checkpoint(note, VERIFIERS)
    except (MalformedMessage, BadSignature) as e:
        assert str(e)
        return
    assert note == GENUINE and signers == [NAME] and checkpoint.size == 42


def test_the_genuine_note_opens():
    _opened_or_refused(GENUINE)


@fuzz
@given(data=st.data())
def test_a_changed_note_is_refused(data):
    note = GENUINE
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(note)))
        cut = data.draw(st.integers(0, 3))
        note = note[:at] + data.draw(pieces) + note[at + cut:]
    _opened_or_refused(note)


@fuzz
@given(note=text | st.lists(pieces, max_size=12).map("".join) | st.none() | st.integers() | st.binary())
def test_any_text_is_refused(note):
    _opened_or_refused(note)
