"""RFC 6962 Merkle tree over an append-only sequence of stored hashes.

The evidence log keeps its tree as a flat list of hashes that only ever grows. Every complete,
aligned subtree -- level ``k`` covering leaves ``[j*2^k, (j+1)*2^k)`` -- has its hash stored
exactly once, in the order the subtrees complete: appending leaf ``m`` stores the leaf hash and
then the hash of each subtree that leaf completes, lowest level first. That is ``1 + (number of
trailing one bits of m)`` hashes, two on average, and nothing written earlier is ever rewritten.

Any tree size ``n`` splits into at most ``log2(n)+1`` aligned complete subtrees (one per set bit
of ``n``), and every subtree that RFC 6962 proofs refer to splits the same way, so roots and
proofs are computed from O(log n) stored hashes fetched in a single ``read_hashes`` call.

``read_hashes(indexes: list[int]) -> list[bytes]`` is any callable returning the stored hashes at
those indexes, in that order (a database query in production, a list lookup in tests).

Proof generation with impossible arguments is a programming error (``ValueError``); proof
verification treats its inputs as untrusted and raises :class:`EvidenceTampered` with a reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from appliance.errors import EvidenceTampered, LocalText

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

ReadHashes = Callable[[list[int]], Sequence[bytes]]

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryTree",
    "ReadHashes",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "stored_hash_count",
    "stored_hash_index",
    "stored_hashes_for_append",
    "tree_hash",
    "verify_consistency",
    "verify_inclusion",
]


# --- hashing (RFC 6962 section 2.1) ----------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one log entry."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- the stored-hash layout ------------------------------------------------------------------


def stored_hash_count(n: int) -> int:
    """Number of stored hashes for a tree of ``n`` leaves: ``sum(n >> k) = 2n - popcount(n)``."""
    _check_non_negative(n=n)
    return 2 * n - n.bit_count()


def stored_hash_index(level: int, n: int) -> int:
    """Index of the stored hash of the subtree at ``level`` covering leaves
    ``[n * 2**level, (n + 1) * 2**level)``.

    That subtree completes when its last leaf ``m = (n + 1) * 2**level - 1`` is appended; the
    append writes the leaf hash at ``stored_hash_count(m)`` and then levels 1, 2, ... in turn.
    """
    _check_non_negative(level=level, n=n)
    last_leaf = ((n + 1) << level) - 1
    return stored_hash_count(last_leaf) + level


def stored_hashes_for_append(n: int, leaf: bytes, read_hashes: ReadHashes) -> list[bytes]:
    """Hashes to store when leaf hash ``leaf`` is appended to a tree of ``n`` leaves.

    They go at indexes ``stored_hash_count(n) .. stored_hash_count(n + 1) - 1``: the leaf hash,
    then one hash per subtree the new leaf completes. Reads at most one batch of earlier hashes.
    """
    _check_non_negative(n=n)
    if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
        raise ValueError(f"a leaf hash must be {HASH_SIZE} bytes")
    completed = _trailing_ones(n)
    # For each level k below the highest subtree completed: the left sibling of the new leaf's
    # level-k subtree, which joins it into a level-(k+1) subtree.
    siblings = [stored_hash_index(k, (n >> k) - 1) for k in range(completed)]
    hashes = [leaf]
    if siblings:
        for left in _read(read_hashes, siblings):
            hashes.append(node_hash(left, hashes[-1]))
    return hashes


def tree_hash(n: int, read_hashes: ReadHashes) -> bytes:
    """Root hash (RFC 6962 MTH) of the tree of the first ``n`` leaves."""
    _check_non_negative(n=n)
    if n == 0:
        return EMPTY_ROOT
    pieces = _aligned_pieces(0, n)
    return _fold(_read(read_hashes, [stored_hash_index(k, j) for k, j in pieces]))


# --- proofs (RFC 6962 sections 2.1.1 and 2.1.2) ----------------------------------------------


def inclusion_proof(t: int, n: int, read_hashes: ReadHashes) -> list[bytes]:
    """Audit path (RFC 6962 PATH) proving leaf ``n`` is in the tree of size ``t``, leaf first."""
    if not 0 <= n < t:
        raise ValueError(f"leaf {n} is not in a tree of size {t}")
    ranges = []
    lo, hi = 0, t
    while hi - lo > 1:
        k = _split(hi - lo)
        if n < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return _range_hashes(ranges, read_hashes)


def consistency_proof(t: int, n: int, read_hashes: ReadHashes) -> list[bytes]:
    """Proof (RFC 6962 PROOF) that the tree of size ``n`` is a prefix of the tree of size ``t``."""
    if not 0 < n <= t:
        raise ValueError(f"no consistency proof from size {n} to size {t}")
    ranges = []
    lo, hi, whole = 0, t, True  # ``whole``: the RFC's flag b, "m is the original tree size"
    while n - lo != hi - lo:
        k = _split(hi - lo)
        if n - lo <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole = False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return _range_hashes(ranges, read_hashes)


def verify_inclusion(t: int, n: int, root: bytes, leaf: bytes, proof: list[bytes]) -> None:
    """Check that leaf hash ``leaf`` is leaf ``n`` of the tree of size ``t`` with root ``root``.

    Follows the verification algorithm of RFC 9162 section 2.1.3.2.
    """
    _check_proof_inputs(proof, [(root, LocalText("crypto.reason.hash_root")),
                                (leaf, LocalText("crypto.reason.hash_leaf"))])
    if not 0 <= n < t:
        raise EvidenceTampered(LocalText("crypto.reason.entry_beyond_log", n, t))
    fn, sn, r = n, t - 1, leaf
    for p in proof:
        if sn == 0:
            raise EvidenceTampered(LocalText("crypto.reason.inclusion_too_long", n))
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise EvidenceTampered(LocalText("crypto.reason.inclusion_too_short", n))
    if r != root:
        raise EvidenceTampered(LocalText("crypto.reason.inclusion_wrong_root", n, t))


def verify_consistency(t: int, n: int, root_t: bytes, root_n: bytes, proof: list[bytes]) -> None:
    """Check that the tree of size ``n`` (root ``root_n``) is a prefix of the tree of size ``t``.

    Follows the verification algorithm of RFC 9162 section 2.1.4.2.
    """
    _check_proof_inputs(proof, [(root_t, LocalText("crypto.reason.hash_new_root")),
                                (root_n, LocalText("crypto.reason.hash_old_root"))])
    if not 0 < n <= t:
        raise EvidenceTampered(LocalText("crypto.reason.consistency_impossible", n, t))
    if n == t:
        if proof:
            raise EvidenceTampered(LocalText("crypto.reason.consistency_equal_not_empty"))
        if root_t != root_n:
            raise EvidenceTampered(LocalText("crypto.reason.two_roots", t))
        return
    if not proof:
        raise EvidenceTampered(LocalText("crypto.reason.consistency_empty", n, t))
    fr, sr = _consistency_roots(t, n, root_n, proof)
    if fr != root_n:
        raise EvidenceTampered(LocalText("crypto.reason.consistency_old_root", n))
    if sr != root_t:
        raise EvidenceTampered(LocalText("crypto.reason.consistency_not_extended", t, n))


def _consistency_roots(t: int, n: int, root_n: bytes, proof: list[bytes]) -> tuple[bytes, bytes]:
    """The (old, new) roots a consistency proof leads to; raises if its length is wrong."""
    path = [root_n, *proof] if n & (n - 1) == 0 else list(proof)
    fn, sn = n - 1, t - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise EvidenceTampered(LocalText("crypto.reason.consistency_too_long", n, t))
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise EvidenceTampered(LocalText("crypto.reason.consistency_too_short", n, t))
    return fr, sr


# --- streaming and in-memory trees -----------------------------------------------------------


def root_from_leaf_hashes(leaves: Iterable[bytes]) -> bytes:
    """Root of the tree of ``leaves`` (leaf hashes), in one pass with O(log n) memory.

    Keeps a stack of (size, hash) of complete subtrees, merging equal sizes as leaves arrive.
    """
    stack: list[tuple[int, bytes]] = []
    for leaf in leaves:
        _check_hash(leaf, LocalText("crypto.reason.hash_leaf"))
        size, h = 1, leaf
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, h = size + left_size, node_hash(left, h)
        stack.append((size, h))
    if not stack:
        return EMPTY_ROOT
    return _fold([h for _, h in stack])


class MemoryTree:
    """A list-backed tree in the stored-hash layout, for tests and offline verification."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []
        self.size = 0

    def append(self, data: bytes, *, prehashed: bool = False) -> int:
        """Append an entry (or, with ``prehashed=True``, its leaf hash); return its index."""
        leaf = data if prehashed else leaf_hash(data)
        self.hashes.extend(stored_hashes_for_append(self.size, leaf, self.read_hashes))
        self.size += 1
        return self.size - 1

    def read_hashes(self, indexes: list[int]) -> list[bytes]:
        return [self.hashes[i] for i in indexes]

    def root(self, size: int | None = None) -> bytes:
        """Root of the whole tree, or of its first ``size`` leaves."""
        return tree_hash(self._size(size), self.read_hashes)

    def inclusion_proof(self, n: int, size: int | None = None) -> list[bytes]:
        """Proof that leaf ``n`` is in the whole tree (or in its first ``size`` leaves)."""
        return inclusion_proof(self._size(size), n, self.read_hashes)

    def consistency_proof(self, n: int, size: int | None = None) -> list[bytes]:
        """Proof that the first ``n`` leaves are a prefix of the whole tree (or of ``size``)."""
        return consistency_proof(self._size(size), n, self.read_hashes)

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is beyond the {self.size} leaves of this tree")
        return size


# --- helpers ---------------------------------------------------------------------------------


def _split(size: int) -> int:
    """Largest power of two strictly below ``size`` (RFC 6962's k), for size > 1."""
    return 1 << ((size - 1).bit_length() - 1)


def _trailing_ones(n: int) -> int:
    return (~n & (n + 1)).bit_length() - 1


def _aligned_pieces(lo: int, hi: int) -> list[tuple[int, int]]:
    """(level, index) of the aligned complete subtrees making up leaves [lo, hi), left to right.

    Valid for every range RFC 6962 recursion produces: ``lo`` is a multiple of the smallest
    power of two not below ``hi - lo``, so taking the set bits of the size from the top keeps
    every piece aligned.
    """
    pieces = []
    size = hi - lo
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            pieces.append((level, lo >> level))
            lo += 1 << level
    return pieces


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Combine subtree hashes right to left: h0 . (h1 . (h2 . ...))."""
    root = hashes[-1]
    for h in reversed(hashes[:-1]):
        root = node_hash(h, root)
    return root


def _range_hashes(ranges: list[tuple[int, int]], read_hashes: ReadHashes) -> list[bytes]:
    """MTH of each leaf range, reading every stored hash needed in one batch."""
    pieces = [_aligned_pieces(lo, hi) for lo, hi in ranges]
    indexes = [stored_hash_index(k, j) for ps in pieces for k, j in ps]
    if not indexes:
        return []
    stored = iter(_read(read_hashes, indexes))
    return [_fold([next(stored) for _ in ps]) for ps in pieces]


def _read(read_hashes: ReadHashes, indexes: list[int]) -> list[bytes]:
    hashes = list(read_hashes(indexes))
    if len(hashes) != len(indexes):
        raise EvidenceTampered(LocalText("crypto.reason.stored_hashes_missing", len(indexes) - len(hashes)))
    for h in hashes:
        _check_hash(h, LocalText("crypto.reason.hash_stored"))
    return hashes


def _check_hash(h: object, what: LocalText) -> None:
    if isinstance(h, bytes | bytearray) and len(h) == HASH_SIZE:
        return
    if isinstance(h, bytes | bytearray):
        raise EvidenceTampered(LocalText("crypto.reason.hash_wrong_size", what, len(h), HASH_SIZE))
    raise EvidenceTampered(LocalText("crypto.reason.hash_wrong_type", what, type(h).__name__, HASH_SIZE))


def _check_proof_inputs(proof: list[bytes], hashes: list[tuple[bytes, LocalText]]) -> None:
    for h, what in hashes:
        _check_hash(h, what)
    for i, p in enumerate(proof):
        _check_hash(p, LocalText("crypto.reason.hash_proof", i))


def _check_non_negative(**values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
