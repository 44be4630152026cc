"""Verify a node's own evidence log: every entry, every stored tree hash, every checkpoint.

The walk streams the log once with O(log n) memory: it recomputes each leaf and each complete
subtree in the order they were stored and compares them with what the store holds, then checks
every signed checkpoint (stored, or handed in from outside such as a witness or an earlier export)
against the recomputed tree.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from appliance.crypto import checkpoint as notes
from appliance.crypto import merkle
from appliance.crypto.evidence_entry import EvidenceEntry, payload_hash
from appliance.crypto.key_chain import KeyRecord, verify_key_chain
from appliance import i18n
from appliance.errors import ApplianceError
from appliance.services.evidence import origin_for, read_hashes
from appliance.storage.database import Database

log = logging.getLogger(__name__)

MAX_PROBLEMS = 50
PAGE = 20000


@dataclass
class AuditReport:
    """What a verification found. Problems are kept as message keys and arguments, so each reader
    gets them in its own language (``messages()``); ``problems`` is the English text."""

    size: int = 0
    checkpoints: int = 0
    findings: list[tuple[str, tuple]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def problems(self) -> list[str]:
        return self.messages("en")

    def messages(self, lang: str | None = None) -> list[str]:
        return [i18n.t(key, *(_render(a, lang) for a in args), lang=lang) for key, args in self.findings]

    def problem(self, key: str, *args: object) -> None:
        if len(self.findings) < MAX_PROBLEMS:
            self.findings.append((key, args))


def _render(arg: object, lang: str | None) -> object:
    """Arguments may themselves be (key, args) pairs, e.g. a checkpoint's label."""
    if isinstance(arg, tuple) and len(arg) == 2 and isinstance(arg[0], str) and arg[0].startswith("audit."):
        return i18n.t(arg[0], *arg[1], lang=lang)
    if isinstance(arg, ApplianceError):
        return arg.message(lang)
    return arg


def note_verifiers(node_did: str, records: Iterable[KeyRecord]) -> dict[tuple[str, bytes], bytes]:
    """(signer name, key id) → public key for every key the node has used."""
    return {(node_did, notes.key_id(node_did, r.public_key)): r.public_key for r in records}


def _pages(db: Database, sql: str) -> Iterator[tuple]:
    last = -1
    while True:
        rows = db.read(lambda c, last=last: c.execute(sql, (last,)).fetchall())
        yield from rows
        if len(rows) < PAGE:
            return
        last = rows[-1][0]


# Read every column as raw bytes: a tampered row may hold text that is not UTF-8 or a value of the
# wrong type, and the audit must report that rather than fail on it.
RAW_SQL = (
    "SELECT idx, CAST(ts AS BLOB), CAST(actor AS BLOB), CAST(action AS BLOB), CAST(subject AS BLOB), "
    f"CAST(payload_hash AS BLOB), CAST(payload AS BLOB), CAST(hashes AS BLOB) FROM evidence_entry "
    f"WHERE idx > ? ORDER BY idx LIMIT {PAGE}"
)


def _raw_entry(row: tuple, report: AuditReport) -> tuple[EvidenceEntry | None, bytes]:
    idx, *texts, phash, payload, hashes = row
    try:
        ts, actor, action, subject = (bytes(t).decode("utf-8") for t in texts)
        details = json.loads(bytes(payload).decode("utf-8")) if payload is not None else None
        return EvidenceEntry(int(idx), ts, actor, action, subject, bytes(phash), details), bytes(hashes or b"")
    except (TypeError, ValueError) as e:
        report.problem("audit.unreadable", idx, type(e).__name__)
        return None, b""


def _check_tree(db: Database, report: AuditReport) -> None:
    """Recompute each append's leaf and completed-subtree hashes and compare with its stored row."""
    stack: list[bytes] = []
    expected = 0
    for row in _pages(db, RAW_SQL):
        entry, stored = _raw_entry(row, report)
        if entry is None:
            return
        if entry.index != expected:
            report.problem("audit.out_of_order", entry.index, expected - 1)
            return
        if entry.payload is not None and payload_hash(entry.payload) != entry.payload_hash:
            report.problem("audit.details_changed", entry.index)
        leaf = merkle.leaf_hash(entry.leaf_data())
        written = [leaf]
        stack.append(leaf)
        n = entry.index
        while n & 1:  # each trailing 1 bit completes one more subtree
            right, left = stack.pop(), stack.pop()
            stack.append(merkle.node_hash(left, right))
            written.append(stack[-1])
            n >>= 1
        if stored[: merkle.HASH_SIZE] != leaf:
            report.problem("audit.entry_changed", entry.index)
        elif stored != b"".join(written):
            report.problem("audit.hashes_changed", entry.index)
        expected += 1
    report.size = expected


def check_note(db: Database, report: AuditReport, note: str, node_did: str,
               verifiers: dict, label: tuple[str, tuple]) -> None:
    try:
        text, _ = notes.open_note(note, verifiers)
        cp = notes.Checkpoint.parse(text)
    except ApplianceError as e:
        report.problem("audit.checkpoint_bad", label, e)
        return
    report.checkpoints += 1
    if cp.origin != origin_for(node_did):
        report.problem("audit.other_log", label, cp.origin)
    elif cp.size > report.size:
        report.problem("audit.entries_deleted", label, cp.size, report.size)
    else:
        root = db.read(lambda c: merkle.tree_hash(cp.size, lambda idx: read_hashes(c, idx)))
        if root != cp.root_hash:
            report.problem("audit.rewritten", label, cp.size)


def audit_log(db: Database, node_did: str, records: list[KeyRecord], extra_notes: Iterable[str] = ()) -> AuditReport:
    report = AuditReport()
    try:
        verify_key_chain(node_did, records)
    except ApplianceError as e:
        report.problem("audit.key_chain", e)
    verifiers = note_verifiers(node_did, records)
    _check_tree(db, report)
    if not report.ok:
        return report
    rows = db.read(lambda c: c.execute("SELECT size, note FROM evidence_checkpoint ORDER BY size").fetchall())
    for size, note in rows:
        check_note(db, report, note, node_did, verifiers, ("audit.label_stored", (size,)))
    for i, note in enumerate(extra_notes, 1):
        check_note(db, report, note, node_did, verifiers, ("audit.label_supplied", (i,)))
    return report
