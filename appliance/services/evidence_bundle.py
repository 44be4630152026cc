"""Evidence bundles: a node's log, or the part of it about one subject, that anyone can check offline.

A bundle is JSON Lines. The first line is the header: the node id, its key chain, the latest signed
checkpoint, older checkpoints each with a consistency proof to the latest, and whether the entries
are complete. Every further line is one entry; entries of a partial bundle carry an inclusion proof
to the latest checkpoint. Verifying needs no store and no passphrase.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from appliance.crypto import checkpoint as notes
from appliance.i18n import t
from appliance.crypto import merkle
from appliance.crypto.evidence_entry import EvidenceEntry, payload_hash
from appliance.crypto.key_chain import KeyRecord, verify_key_chain
from appliance.errors import ApplianceError, BundleInvalid, shown
from appliance.services.evidence_audit import note_verifiers
from appliance.services.evidence import origin_for

FORMAT = "dsnode-evidence-bundle"
VERSION = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def write_bundle(path: Path, log, identity, *, subject: str | None = None) -> int:
    """Export the log (or one subject's entries) to ``path``; returns the number of entries written."""
    latest = log.checkpoint()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "node": identity.did,
        "origin": log.origin,
        "keys": [r.to_json() for r in identity.key_records()],
        "checkpoint": latest.note,
        "checkpoints": [
            {"note": cp.note, "consistency": [_b64(h) for h in log.consistency_proof(cp.size, latest.size)]}
            for cp in log.checkpoints() if 0 < cp.size < latest.size
        ],
        "complete": subject is None,
        "subject": subject,
    }
    tmp = path.with_name(path.name + ".part")
    count = 0
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(header, ensure_ascii=False, sort_keys=True) + "\n")
        for entry in log.entries(0, latest.size, subject=subject):
            line = entry.to_json()
            if subject is not None:
                line["proof"] = [_b64(h) for h in log.inclusion_proof(entry.index, latest.size)]
            f.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return count


@dataclass
class BundleReport:
    node: str = ""
    size: int = 0
    entries: int = 0
    checkpoints: int = 0
    complete: bool = False
    signers: list[str] = field(default_factory=list)


MAX_LINE = 64 * 1024 * 1024
"""Longest line read from a bundle: an entry carries at most a payload of a few kilobytes."""
HEADER_FIELDS = {"node": str, "keys": list, "checkpoint": str, "checkpoints": list, "complete": bool}


def _bounded_int(digits: str) -> int:
    if len(digits) > 20:  # no field is near this; int() takes at most 4,300 digits
        raise ValueError("a number is too long")
    return int(digits)


_JSON = json.JSONDecoder(parse_int=_bounded_int)


def _lines(path: Path) -> Iterator[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(iter(lambda: f.readline(MAX_LINE + 1), ""), 1):
                if len(line) > MAX_LINE:
                    raise BundleInvalid(path, t("bundle.line_too_long", number, MAX_LINE >> 20))
                try:
                    data = _JSON.decode(line)
                except (ValueError, RecursionError):  # RecursionError: nested more deeply than json parses
                    raise BundleInvalid(path, t("bundle.not_json", number)) from None
                if not isinstance(data, dict):
                    raise BundleInvalid(path, t("bundle.not_object", number))
                yield data
    except (OSError, UnicodeDecodeError) as e:
        raise BundleInvalid(path, t("bundle.unreadable", e)) from None


def verify_bundle(path: Path) -> BundleReport:
    """Check a bundle completely; raise ``BundleInvalid`` naming the first problem."""
    lines = _lines(path)
    header = next(lines, None)
    if not header or header.get("format") != FORMAT:
        raise BundleInvalid(path, t("bundle.not_bundle"))
    if header.get("version") != VERSION or isinstance(header.get("version"), bool):
        raise BundleInvalid(path, t("bundle.version", shown(header.get("version"))))
    for name, kind in HEADER_FIELDS.items():
        if not isinstance(header.get(name), kind):
            raise BundleInvalid(path, t("bundle.malformed", f"{name}: {shown(header.get(name))}"))
    try:
        return _verify(path, header, lines)
    except BundleInvalid:
        raise
    except ApplianceError as e:
        raise BundleInvalid(path, e.message()) from None
    except (KeyError, TypeError, ValueError) as e:
        raise BundleInvalid(path, t("bundle.malformed", f"{type(e).__name__}: {e}")) from None


def _verify(path: Path, header: dict, lines: Iterable[dict]) -> BundleReport:
    node = header["node"]
    records = [KeyRecord.from_json(r) for r in header["keys"]]
    verify_key_chain(node, records)
    verifiers = note_verifiers(node, records)
    text, signers = notes.open_note(header["checkpoint"], verifiers)
    latest = notes.Checkpoint.parse(text)
    if latest.origin != origin_for(node):
        raise BundleInvalid(path, t("bundle.other_log", latest.origin))
    report = BundleReport(node=node, size=latest.size, complete=bool(header["complete"]), signers=signers)
    subject = header.get("subject")
    if not report.complete and (not isinstance(subject, str) or not subject):
        raise BundleInvalid(path, t("bundle.no_subject"))
    for older in header["checkpoints"]:
        old = notes.Checkpoint.parse(notes.open_note(older["note"], verifiers)[0])
        proof = [_unb64(h) for h in older["consistency"]]
        merkle.verify_consistency(latest.size, old.size, latest.root_hash, old.root_hash, proof)
        report.checkpoints += 1
    leaves: list[bytes] = []
    last = 0
    for data in lines:
        entry = EvidenceEntry.from_json(data)
        if entry.payload is not None and payload_hash(entry.payload) != entry.payload_hash:
            raise BundleInvalid(path, t("audit.details_changed", entry.index))
        leaf = merkle.leaf_hash(entry.leaf_data())
        if report.complete:
            if entry.index != len(leaves):
                raise BundleInvalid(path, t("bundle.missing", len(leaves)))
            leaves.append(leaf)
        else:
            if entry.subject != subject:  # a genuine entry about something else, slipped in
                raise BundleInvalid(path, t("bundle.other_subject", entry.index, subject))
            if entry.index < last:  # each entry once, in the log's order
                raise BundleInvalid(path, t("bundle.missing", entry.index))
            last = entry.index + 1
            proof = [_unb64(h) for h in data["proof"]]
            merkle.verify_inclusion(latest.size, entry.index, latest.root_hash, leaf, proof)
        report.entries += 1
    if report.complete:
        if len(leaves) != latest.size:
            raise BundleInvalid(path, t("bundle.count", latest.size, len(leaves)))
        if merkle.root_from_leaf_hashes(leaves) != latest.root_hash:
            raise BundleInvalid(path, t("bundle.changed"))
    return report
