"""Delivery records at the operator: providers file the consumer's signed receipt of each delivery
(guideline 8.4.2.2 d: the platform supervises delivery). The operator checks that the provider is a
member, that the consumer signed the receipt and that it names the transfer; it keeps one record
per (provider, transfer)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from appliance.domain.membership import Action
from appliance.errors import ApplianceError, LocalText, MalformedMessage
from appliance.operator.admission import is_member
from appliance.operator.space import OperatorContext
from appliance.services.delivery import manifest as mf

ACTION = Action.OPERATOR_DELIVERY_FILED


@dataclass(frozen=True)
class DeliveryRecord:
    transfer_id: str
    provider: str
    consumer: str
    agreement_id: str
    receipt: dict
    filed: str


def handle_record(ctx: OperatorContext, conn, msg) -> None:
    body = msg.body if isinstance(msg.body, dict) else {}
    receipt, signature = body.get("receipt"), body.get("signature")
    manifest, manifest_sig = body.get("manifest"), body.get("manifest_signature")
    consumer, transfer, agreement = body.get("consumer"), body.get("transfer"), body.get("agreement")
    if not (isinstance(receipt, dict) and isinstance(signature, dict) and isinstance(manifest, dict)
            and isinstance(consumer, str) and isinstance(transfer, str) and isinstance(agreement, str)):
        raise MalformedMessage(LocalText("operator.reason.delivery_fields"))
    if not is_member(conn, msg.sender) or not is_member(conn, consumer):
        raise MalformedMessage(LocalText("operator.reason.delivery_not_member", msg.sender))
    try:  # the provider signed the manifest, the consumer signed a receipt of exactly it
        mf.verify_manifest(manifest, manifest_sig, msg.sender)
        mf.verify_receipt(receipt, signature, consumer, manifest)
    except ApplianceError as e:
        raise MalformedMessage(LocalText("operator.reason.delivery_receipt", e.message("en"))) from None
    cur = conn.execute("INSERT OR IGNORE INTO operator_delivery (transfer_id, provider, consumer, agreement_id, "
                       "receipt, receipt_sig, filed) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (transfer, msg.sender, consumer, agreement, json.dumps(receipt), json.dumps(signature),
                        ctx.now()))
    if cur.rowcount:
        ctx.record(conn, ACTION, msg.sender, {"transfer": transfer, "consumer": consumer, "agreement": agreement,
                                              "receipt_sha256": mf.manifest_hash(receipt)})


def records(ctx: OperatorContext) -> list[DeliveryRecord]:
    rows = ctx.db.read(lambda c: c.execute(
        "SELECT transfer_id, provider, consumer, agreement_id, receipt, filed FROM operator_delivery ORDER BY filed"
    ).fetchall())
    return [DeliveryRecord(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]
