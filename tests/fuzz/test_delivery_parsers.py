"""What a peer sends about a delivery: each DSP transfer message, the provider's manifest and the
consumer's receipt with any one value changed (or any JSON at all). A message is parsed or refused
with DeliveryError; a manifest or receipt verifies only when it is the one signed, and is refused
with ManifestInvalid or ReceiptInvalid otherwise; every refusal can be shown in both languages.

A message body reaches ``messages.parse`` only through the envelope's checks (``parse_value``: no
integer beyond 2**53, no nesting deeper than 48, no NaN), so the messages tried here are those that
pass them; the manifest and receipt checks take any value at all."""

from __future__ import annotations

import io
import json

from hypothesis import assume, given
from hypothesis import strategies as st

from appliance.crypto.jcs import canonical
from appliance.crypto.envelope import parse_value
from appliance.crypto.keys import SigningKey
from appliance.domain.transfer import Event, Role
from appliance.errors import DeliveryError, LocalText, MalformedMessage, ManifestInvalid, ReceiptInvalid
from appliance.services.delivery import manifest as mf
from appliance.services.delivery import messages
from tests.fuzz.values import json_values, mutations
from tests.fuzzing import fuzz, scaled

PROVIDER, CONSUMER = SigningKey.from_seed(b"\x05" * 32), SigningKey.from_seed(b"\x06" * 32)
DATA = bytes(range(251)) * 9
HASHES, SIZE, SHA256 = mf.chunk_hashes(io.BytesIO(DATA), 1024)
MANIFEST = mf.build_manifest(transfer_id="urn:uuid:t1", agreement_id="urn:uuid:a1", resource_id="urn:uuid:r1",
                             version=2, chunk_size=1024, chunk_hashes=HASHES, size=SIZE, sha256=SHA256, masked=True,
                             created="2026-12-03T10:00:00.000Z", masking_rules=["phone:mask-middle"])
MANIFEST_SIG = mf.sign(PROVIDER, MANIFEST)
RECEIPT = mf.build_receipt(MANIFEST, MANIFEST_SIG, consumer_did=CONSUMER.did, received="2026-12-03T10:01:00.000Z",
                           sha256=SHA256)
RECEIPT_SIG = mf.sign(CONSUMER, RECEIPT)
ADDRESS = messages.direct_address("10.77.0.1", 40123, "urn:uuid:t1")
BODIES = [
    messages.request("c1", "urn:uuid:a1", format=messages.DIRECT, callback="mqtt:inbox/x", data_address=ADDRESS),
    messages.start("c1", "p1", ADDRESS, manifest=MANIFEST, signature=MANIFEST_SIG),
    messages.suspension("c1", "p1", "paused", LocalText("delivery.reason.chunk_length", 3, 4)),
    messages.completion("c1", "p1", receipt=RECEIPT, signature=RECEIPT_SIG),
    messages.termination("c1", "p1", "failed", LocalText("delivery.reason.received_differs", "ab", "cd")),
    messages.process("c1", "p1", messages.State.STARTED),
]


def _shown(error: Exception) -> None:
    assert error.message("en") and error.message("zh_CN")  # type: ignore[attr-defined]


def _received(body: object) -> object:
    """``body`` as it comes out of a received envelope (hypothesis skips one the envelope refuses)."""
    try:
        return parse_value(json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass"),
                           what=LocalText("crypto.reason.the_message"))
    except (MalformedMessage, ValueError, RecursionError):
        assume(False)


def _parsed_or_refused(body: object, sender: Role | None) -> None:
    body = _received(body)
    try:
        event, fields = messages.parse(body, sender)
    except DeliveryError as e:
        _shown(e)
        return
    assert isinstance(event, Event) and isinstance(fields["consumer_pid"], str)
    reason = fields.get("reason")
    if reason is not None:
        assert str(reason) is not None and (reason.message("zh_CN") if isinstance(reason, LocalText) else reason)
    if fields.get("data_address") is not None:
        try:
            host, port, transfer = messages.direct_endpoint(fields["data_address"])
            assert host and 0 < port < 65536 and transfer
        except DeliveryError as e:
            _shown(e)


@scaled(400)
@given(data=st.data(), sender=st.sampled_from([Role.PROVIDER, Role.CONSUMER, None]))
def test_a_transfer_message_with_a_value_changed_is_parsed_or_refused(data, sender):
    body = data.draw(mutations(data.draw(st.sampled_from(BODIES)), json_values(8)))
    _parsed_or_refused(body, sender)
    try:
        messages.parse_process(_received(body))
    except DeliveryError as e:
        _shown(e)


@scaled(600)
@given(body=json_values(20))
def test_any_json_is_refused_as_a_transfer_message(body):
    _parsed_or_refused(body, Role.CONSUMER)


@fuzz
@given(manifest=mutations(MANIFEST, json_values(8)))
def test_a_manifest_with_a_value_changed_does_not_verify(manifest):
    try:
        mf.verify_manifest(manifest, MANIFEST_SIG, PROVIDER.did)
    except ManifestInvalid as e:
        _shown(e)
        return
    assert canonical(manifest) == canonical(MANIFEST)


@fuzz
@given(signature=mutations(MANIFEST_SIG, json_values(8)) | json_values(8))
def test_a_manifest_with_another_signature_does_not_verify(signature):
    try:
        mf.verify_manifest(MANIFEST, signature, PROVIDER.did)
    except ManifestInvalid as e:
        _shown(e)
        return
    assert signature["signature"] == MANIFEST_SIG["signature"]


@fuzz
@given(receipt=mutations(RECEIPT, json_values(8)), signature=st.sampled_from([RECEIPT_SIG, MANIFEST_SIG]))
def test_a_receipt_with_a_value_changed_does_not_verify(receipt, signature):
    try:
        mf.verify_receipt(receipt, signature, CONSUMER.did, MANIFEST)
    except ReceiptInvalid as e:
        _shown(e)
        return
    assert canonical(receipt) == canonical(RECEIPT) and signature is RECEIPT_SIG
