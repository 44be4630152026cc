"""Verify a node's own evidence log: every entry, every stored tree hash, every checkpoint.

The walk streams the log once with O(log n) memory: it recomputes each leaf and each complete
subtree in the order they were stored and compares them with what the store holds, then checks
every signed checkpoint (stored, or handed in from outside such as a witness or an earlier export)
against the recomputed tree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from appliance.crypto import checkpoint as notes
from appliance.crypto import merkle
from appliance.domain.evidence import payload_hash
from appliance.domain.identity import KeyRecord, verify_key_chain
from appliance.errors import ApplianceError
from appliance.services.evidence import ENTRY_COLUMNS, origin_for, read_hashes, row_to_entry
from appliance.storage.database import Database

log = logging.getLogger(__name__)

MAX_PROBLEMS = 50
PAGE = 20000


@dataclass
class AuditReport:
    size: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


def note_verifiers(node_did: str, records: Iterable[KeyRecord]) -> dict[tuple[str, bytes], bytes]:
    """(signer name, key id) → public key for every key the node has used."""
    return {(node_did, notes.key_id(node_did, r.public_key)): r.public_key for r in records}


def _pages(db: Database, sql: str) -> Iterator[tuple]:
    last = -1
    while True:
        rows = db.read(lambda c: c.execute(sql, (last,)).fetchall())
        yield from rows
        if len(rows) < PAGE:
            return
        last = rows[-1][0]


def _expected_hashes(db: Database, report: AuditReport) -> Iterator[tuple[int, bytes]]:
    """Recompute (stored index, hash) for every leaf and completed subtree, in storage order."""
    stack: list[bytes] = []
    expected_idx = 0
    sql = f"SELECT {ENTRY_COLUMNS} FROM evidence_entry WHERE idx > ? ORDER BY idx LIMIT {PAGE}"
    for row in _pages(db, sql):
        entry = row_to_entry(row)
        if entry.index != expected_idx:
            report.problem(f"entries are missing or out of order: index {entry.index} follows {expected_idx - 1}")
            return
        if entry.payload is not None and payload_hash(entry.payload) != entry.payload_hash:
            report.problem(f"the details of entry {entry.index} were changed")
        level_hashes = [(merkle.stored_hash_index(0, entry.index), merkle.leaf_hash(entry.leaf_data()))]
        h, n, level = level_hashes[0][1], entry.index, 0
        stack.append(h)
        while n & 1:
            right = stack.pop()
            left = stack.pop()
            h = merkle.node_hash(left, right)
            stack.append(h)
            n >>= 1
            level += 1
            level_hashes.append((merkle.stored_hash_index(level, n), h))
        yield from sorted(level_hashes)
        expected_idx += 1
    report.size = expected_idx


def _check_tree(db: Database, report: AuditReport) -> None:
    stored = _pages(db, f"SELECT idx, hash FROM evidence_hash WHERE idx > ? ORDER BY idx LIMIT {PAGE}")
    count = 0
    for idx, want in _expected_hashes(db, report):
        got = next(stored, None)
        count += 1
        if got is None or got[0] != idx:
            report.problem(f"the stored tree is missing hash {idx}")
            return
        if bytes(got[1]) != want:
            entry = _leaf_owner(idx)
            report.problem(f"entry {entry} does not match its hash in the tree: it was changed after it was written"
                           if entry is not None else f"stored tree hash {idx} was changed")
    if next(stored, None) is not None:
        report.problem("the stored tree has hashes for entries that are not in the log (entries were deleted)")


def _leaf_owner(idx: int) -> int | None:
    """The leaf index whose leaf hash is stored at ``idx``, if it is a leaf slot."""
    lo, hi = 0, max(idx, 1)
    while lo <= hi:
        mid = (lo + hi) // 2
        at = merkle.stored_hash_index(0, mid)
        if at == idx:
            return mid
        lo, hi = (mid + 1, hi) if at < idx else (lo, mid - 1)
    return None


def check_note(db: Database, report: AuditReport, note: str, node_did: str,
               verifiers: dict, label: str) -> None:
    try:
        text, _ = notes.open_note(note, verifiers)
        cp = notes.Checkpoint.parse(text)
    except ApplianceError as e:
        report.problem(f"{label}: {e.message('en')}")
        return
    report.checkpoints += 1
    if cp.origin != origin_for(node_did):
        report.problem(f"{label} belongs to another log ({cp.origin})")
    elif cp.size > report.size:
        report.problem(f"{label} covers {cp.size} entries but the log has only {report.size}: entries were deleted")
    else:
        root = db.read(lambda c: merkle.tree_hash(cp.size, lambda idx: read_hashes(c, idx)))
        if root != cp.root_hash:
            report.problem(f"{label} (size {cp.size}) does not match the log: its history was rewritten")


def audit_log(db: Database, node_did: str, records: list[KeyRecord], extra_notes: Iterable[str] = ()) -> AuditReport:
    report = AuditReport()
    try:
        verify_key_chain(node_did, records)
    except ApplianceError as e:
        report.problem(e.message("en"))
    verifiers = note_verifiers(node_did, records)
    _check_tree(db, report)
    if not report.ok:
        return report
    rows = db.read(lambda c: c.execute("SELECT size, note FROM evidence_checkpoint ORDER BY size").fetchall())
    for size, note in rows:
        check_note(db, report, note, node_did, verifiers, f"the stored checkpoint of size {size}")
    for i, note in enumerate(extra_notes, 1):
        check_note(db, report, note, node_did, verifiers, f"checkpoint #{i} you supplied")
    return report
