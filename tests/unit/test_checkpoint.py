"""Checkpoints and C2SP signed notes: format, signatures, witnesses and malformed input."""

from __future__ import annotations

import base64
import hashlib

import pytest
from nacl.signing import SigningKey

from appliance.crypto.checkpoint import (
    Checkpoint,
    VerifierKey,
    add_signature,
    key_id,
    open_checkpoint,
    open_note,
    parse_verifier_key,
    sign_note,
    verifier_key,
    verifiers_from_keys,
)
from appliance.errors import BadSignature, MalformedMessage

NODE = "dsnode.example/node-1"
WITNESS = "witness.example/operator"
NODE_SEED = bytes(range(32))
WITNESS_SEED = bytes([7] * 32)
ROOT = hashlib.sha256(b"dsnode known-answer root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()
URLSAFE_B64 = base64.urlsafe_b64encode(b"\xff" * 32).decode()

# Computed once with this module (Ed25519 is deterministic); any change to the format breaks it.
KNOWN_NOTE = (
    "dsnode.example/node-1\n"
    "42\n"
    "K4/E0XI5C4eeZ/km3S4LIQfZW4KYUI3F83/1fwtmPK0=\n"
    "\n"
    "\u2014 dsnode.example/node-1 GVukpmeDrhYX8883Kgyf8ipOUVgy2whRW7YmDbXbrovVSjQgl6ZBVg6XBtnj3613"
    "oA9aiPef/n3EV4Tsn0oCnANvKQo=\n"
)
KNOWN_VKEY = "dsnode.example/node-1+195ba4a6+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
KNOWN_WITNESS_LINE = (
    "\u2014 witness.example/operator ZXVju5xiuXnyi4dCfn2TnFYc88TkQBBiZm4GZbAFWCdCKz5Qy2T+gdn2+T60"
    "Cj8WiWg4huOPElel95zBzwXmfEj4UAg=\n"
)

# The reference example of golang.org/x/mod/sumdb/note (note_test.go): interoperability.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdn"
    "gotpRZb6KE6RyyBwJnAM=\n"
)


def public(seed: bytes) -> bytes:
    return SigningKey(seed).verify_key.encode()


def verifiers(*named_seeds: tuple[str, bytes]) -> dict:
    return {(name, key_id(name, public(seed))): public(seed) for name, seed in named_seeds}


def signed_checkpoint(size: int = 42, root: bytes = ROOT, extensions=()) -> str:
    return sign_note(Checkpoint(NODE, size, root, extensions).body(), NODE, NODE_SEED)


# --- checkpoint bodies -----------------------------------------------------------------------


def test_checkpoint_body_round_trips():
    for cp in [Checkpoint(NODE, 0, hashlib.sha256(b"").digest()),
               Checkpoint(NODE, 42, ROOT),
               Checkpoint(NODE, 2**64 - 1, ROOT, ("ext one", "ext-two"))]:
        assert Checkpoint.parse(cp.body()) == cp
    assert Checkpoint(NODE, 42, ROOT).body() == f"{NODE}\n42\n{ROOT_B64}\n"
    assert Checkpoint(NODE, 1, ROOT, ["x"]).extensions == ("x",)


@pytest.mark.parametrize("body, reason", [
    (f"{NODE}\n42\n{ROOT_B64}", "newline"),
    (f"{NODE}\n42\n", "three lines"),
    (f"\n42\n{ROOT_B64}\n", "origin is empty"),
    (f"node one\n42\n{ROOT_B64}\n", "space"),
    (f"a+b\n42\n{ROOT_B64}\n", "plus"),
    (f"{NODE}\n042\n{ROOT_B64}\n", "not a plain number"),
    (f"{NODE}\n-1\n{ROOT_B64}\n", "not a plain number"),
    (f"{NODE}\n\u0664\u0662\n{ROOT_B64}\n", "not a plain number"),
    (f"{NODE}\n{2**64}\n{ROOT_B64}\n", "out of range"),
    (f"{NODE}\n{'9' * 5000}\n{ROOT_B64}\n", "not a plain number"),
    (f"{NODE}\n42\n{base64.b64encode(ROOT[:31]).decode()}\n", "32 bytes"),
    (f"{NODE}\n42\n{base64.b64encode(ROOT).decode().rstrip('=')}\n", "base64"),
    (f"{NODE}\n42\n{URLSAFE_B64}\n", "base64"),
    (f"{NODE}\n42\n{ROOT_B64}\n\n", "extension"),
    (f"{NODE}\n42\n{ROOT_B64}\nok\x07\n", "control"),
])
def test_malformed_checkpoint_bodies_are_rejected(body, reason):
    with pytest.raises(MalformedMessage, match=reason):
        Checkpoint.parse(body)


def test_invalid_checkpoint_fields_are_programming_errors():
    for args in [("", 1, ROOT), ("a b", 1, ROOT), (NODE, -1, ROOT), (NODE, True, ROOT),
                 (NODE, 1, ROOT[:31]), (NODE, 1, ROOT, ("",)), (NODE, 1, ROOT, ("a\nb",))]:
        with pytest.raises(ValueError):
            Checkpoint(*args)


# --- signing and opening ---------------------------------------------------------------------


def test_known_answer_note_is_stable_and_well_formed():
    note = signed_checkpoint()
    assert note == KNOWN_NOTE
    text, blank, line = note.partition("\n\n")[0] + "\n", "\n", note.split("\n\n")[1]
    assert note == text + blank + line
    assert line.startswith("\u2014 " + NODE + " ") and line.endswith("\n")
    assert line.count(" ") == 2
    blob = base64.b64decode(line.split(" ")[2].rstrip("\n"), validate=True)
    assert len(blob) == 4 + 64
    assert blob[:4] == key_id(NODE, public(NODE_SEED))
    assert blob[:4] == hashlib.sha256(NODE.encode() + b"\n\x01" + public(NODE_SEED)).digest()[:4]
    SigningKey(NODE_SEED).verify_key.verify(text.encode(), blob[4:])
    assert verifier_key(NODE, public(NODE_SEED)) == KNOWN_VKEY


def test_reproduces_the_go_sumdb_note_reference_example():
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
    assert sign_note(GO_TEXT, "PeterNeumann", seed) == GO_TEXT + "\n" + GO_SIG
    assert verifier_key("PeterNeumann", public(seed)) == GO_VKEY
    assert open_note(GO_TEXT + "\n" + GO_SIG, verifiers_from_keys([GO_VKEY])) == (
        GO_TEXT, ["PeterNeumann"])


def test_round_trip_through_open_checkpoint():
    cp, signers = open_checkpoint(signed_checkpoint(), verifiers((NODE, NODE_SEED)))
    assert cp == Checkpoint(NODE, 42, ROOT) and signers == [NODE]
    text, signers = open_note(signed_checkpoint(), verifiers_from_keys([KNOWN_VKEY]))
    assert text == Checkpoint(NODE, 42, ROOT).body() and signers == [NODE]


def test_signing_key_object_and_seed_sign_the_same():
    text = Checkpoint(NODE, 7, ROOT).body()
    assert sign_note(text, NODE, SigningKey(NODE_SEED)) == sign_note(text, NODE, NODE_SEED)


@pytest.mark.parametrize("change", [
    lambda n: n.replace("\n42\n", "\n43\n", 1),
    lambda n: n.replace("\n42\n", "\n4\n", 1),
    lambda n: n.replace("K4/E0", "K4/E1", 1),
    lambda n: n.replace("node-1\n", "node-2\n", 1),
    lambda n: n.replace("dsnode.example", "dsnode.exampla", 1),
])
def test_changed_text_fails_verification(change):
    tampered = change(KNOWN_NOTE)
    assert tampered != KNOWN_NOTE
    with pytest.raises(BadSignature):
        open_note(tampered, verifiers((NODE, NODE_SEED)))


def test_flipped_signature_bit_fails_verification():
    line = KNOWN_NOTE.split("\n\n")[1]
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[4 + 10] ^= 0x01
    note = KNOWN_NOTE.replace(line.split(" ")[2].strip(), base64.b64encode(blob).decode())
    with pytest.raises(BadSignature, match=NODE):
        open_note(note, verifiers((NODE, NODE_SEED)))


def test_witness_cosignature():
    note = add_signature(signed_checkpoint(), WITNESS, WITNESS_SEED)
    assert note == KNOWN_NOTE + KNOWN_WITNESS_LINE
    both = verifiers((NODE, NODE_SEED), (WITNESS, WITNESS_SEED))
    assert open_note(note, both)[1] == [NODE, WITNESS]
    assert open_note(note, verifiers((WITNESS, WITNESS_SEED)))[1] == [WITNESS]
    assert add_signature(note, WITNESS, WITNESS_SEED) == note  # already co-signed


def test_cosigning_over_a_forged_signature_of_the_same_key_is_refused():
    other = sign_note(Checkpoint(NODE, 43, ROOT).body(), WITNESS, WITNESS_SEED)
    forged = KNOWN_NOTE + other.split("\n\n")[1]
    with pytest.raises(BadSignature, match=WITNESS):
        add_signature(forged, WITNESS, WITNESS_SEED)


def test_unknown_signers_are_ignored():
    stranger = add_signature(signed_checkpoint(), "stranger.example", bytes([9] * 32))
    assert open_note(stranger, verifiers((NODE, NODE_SEED)))[1] == [NODE]
    # A known name with an unknown key id (e.g. a rotated key) is an unknown signer too.
    rotated = sign_note(Checkpoint(NODE, 42, ROOT).body(), NODE, bytes([1] * 32))
    both = add_signature(rotated, NODE, NODE_SEED)
    assert open_note(both, verifiers((NODE, NODE_SEED)))[1] == [NODE]


def test_note_with_only_unknown_signers_is_rejected():
    note = sign_note(Checkpoint(NODE, 42, ROOT).body(), "stranger.example", bytes([9] * 32))
    with pytest.raises(BadSignature, match="stranger.example"):
        open_note(note, verifiers((NODE, NODE_SEED)))
    with pytest.raises(BadSignature):
        open_note(note, {})


def test_a_known_key_with_a_bad_signature_rejects_the_whole_note():
    note = add_signature(signed_checkpoint(), WITNESS, WITNESS_SEED)
    other = sign_note(Checkpoint(NODE, 43, ROOT).body(), WITNESS, WITNESS_SEED)
    forged = note.replace(KNOWN_WITNESS_LINE, other.split("\n\n")[1])
    with pytest.raises(BadSignature, match=WITNESS):
        open_note(forged, verifiers((NODE, NODE_SEED), (WITNESS, WITNESS_SEED)))
    assert open_note(forged, verifiers((NODE, NODE_SEED)))[1] == [NODE]


def test_verifiers_may_be_a_callable():
    keys = verifiers((NODE, NODE_SEED))
    asked = []

    def lookup(name, kid):
        asked.append((name, kid))
        return keys.get((name, kid))

    assert open_note(signed_checkpoint(), lookup)[1] == [NODE]
    assert asked == [(NODE, key_id(NODE, public(NODE_SEED)))]


# --- malformed notes -------------------------------------------------------------------------


def sig_blob() -> str:
    return KNOWN_NOTE.split("\n\n")[1].split(" ")[2].strip()


@pytest.mark.parametrize("note, reason", [
    (KNOWN_NOTE.replace("\n\n", "\n"), "blank line"),
    (KNOWN_NOTE[:-1], "newline"),
    (KNOWN_NOTE.split("\n\n")[0] + "\n\n", "no signature lines"),
    (KNOWN_NOTE.replace("\u2014 ", "- "), "em dash"),
    (KNOWN_NOTE.replace("\u2014 ", "\u2014"), "em dash"),
    (KNOWN_NOTE.replace(f"\u2014 {NODE} ", f"\u2014 {NODE}  "), "base64"),
    (KNOWN_NOTE.replace(sig_blob(), sig_blob()[:-2] + "!="), "base64"),
    (KNOWN_NOTE.replace(sig_blob(), sig_blob().rstrip("=")), "base64"),
    (KNOWN_NOTE.replace(sig_blob(), "AAE="), "key id"),
    (KNOWN_NOTE.replace(sig_blob(), "AAECAw=="), "key id"),
    (KNOWN_NOTE.replace(f" {NODE} ", " a+b "), "plus"),
    (KNOWN_NOTE.replace("42\n", "42\t\n"), "control"),
    (KNOWN_NOTE + KNOWN_NOTE.split("\n\n")[1], "same key"),
    (KNOWN_NOTE + "\n", "no signature lines"),
    (KNOWN_NOTE + "\u2014 x AAECAwQ=", "newline"),
])
def test_malformed_notes_are_rejected(note, reason):
    with pytest.raises(MalformedMessage, match=reason):
        open_note(note, verifiers((NODE, NODE_SEED)))


def test_too_many_signatures_are_rejected():
    note = signed_checkpoint()
    for i in range(99):
        note = add_signature(note, f"w{i}.example", hashlib.sha256(bytes([i])).digest())
    assert len(open_note(note, verifiers((NODE, NODE_SEED)))[1]) == 1
    with pytest.raises(MalformedMessage, match="100 signatures"):
        add_signature(note, "one-more.example", bytes([3] * 32))
    line = sign_note("x\n", "extra.example", bytes([3] * 32)).split("\n\n")[1]
    with pytest.raises(MalformedMessage, match="more than 100"):
        open_note(note + line, verifiers((NODE, NODE_SEED)))


def test_note_text_may_contain_blank_lines():
    text = "first\n\nsecond\n"
    note = sign_note(text, NODE, NODE_SEED)
    assert open_note(note, verifiers((NODE, NODE_SEED))) == (text, [NODE])


def test_bad_signing_inputs_are_programming_errors():
    for text, name, key in [("no newline", NODE, NODE_SEED), ("x\n", "a b", NODE_SEED),
                            ("x\n", "", NODE_SEED), ("x\n", NODE, b"short"),
                            ("bell\x07\n", NODE, NODE_SEED)]:
        with pytest.raises(ValueError):
            sign_note(text, name, key)


# --- verifier keys ---------------------------------------------------------------------------


def test_verifier_key_round_trip():
    vkey = verifier_key(NODE, public(NODE_SEED))
    assert parse_verifier_key(vkey) == VerifierKey(NODE, key_id(NODE, public(NODE_SEED)),
                                                  public(NODE_SEED))
    name, kid, key = parse_verifier_key(GO_VKEY)
    assert (name, kid.hex()) == ("PeterNeumann", "c74f20a3")


@pytest.mark.parametrize("vkey, reason", [
    ("PeterNeumann+c74f20a3", "name\\+keyid\\+key"),
    ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "empty"),
    ("PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lowercase hex"),
    ("PeterNeumann+c74f20a3aa+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lowercase hex"),
    ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lowercase hex"),
    ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
    ("PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "base64"),
    ("PeterNeumann+c74f20a3+Alpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not an Ed25519"),
    ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "space"),
])
def test_malformed_verifier_keys_are_rejected(vkey, reason):
    with pytest.raises(MalformedMessage, match=reason):
        parse_verifier_key(vkey)
