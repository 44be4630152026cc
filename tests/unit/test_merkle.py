"""The stored-hash Merkle tree against a naive RFC 6962 implementation and the CT vectors."""

from __future__ import annotations

import hashlib

import pytest

from appliance.crypto import merkle
from appliance.crypto.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    stored_hash_count,
    stored_hash_index,
    stored_hashes_for_append,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)
from appliance.errors import EvidenceTampered

MAX_SIZE = 300
# Every (t, n) pair is compared with the naive proofs; the tampering tests use every pair up to
# size 64 and every pair of these larger sizes (around powers of two and the ends).
TAMPER_SIZES = [*range(1, 65), 65, 96, 127, 128, 129, 200, 255, 256, 257, 299, 300]


# --- a naive RFC 6962 implementation, written from the RFC text ------------------------------


class NaiveRFC6962:
    """MTH, PATH and PROOF/SUBPROOF of RFC 6962 section 2.1, over D[lo:hi] of fixed entries.

    Written as the RFC states them; MTH is memoised by (lo, hi) only to keep 90,000 proofs fast.
    """

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries
        self.memo: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def k_for(n: int) -> int:
        """The largest power of two smaller than n (n > 1)."""
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def mth(self, lo: int, hi: int) -> bytes:
        if (lo, hi) not in self.memo:
            n = hi - lo
            if n == 0:
                h = hashlib.sha256(b"").digest()
            elif n == 1:
                h = hashlib.sha256(b"\x00" + self.entries[lo]).digest()
            else:
                k = self.k_for(n)
                left, right = self.mth(lo, lo + k), self.mth(lo + k, hi)
                h = hashlib.sha256(b"\x01" + left + right).digest()
            self.memo[lo, hi] = h
        return self.memo[lo, hi]

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]), m relative to lo."""
        n = hi - lo
        if n == 1:
            return []
        k = self.k_for(n)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n]) = SUBPROOF(m, D[0:n], true)."""
        return self.subproof(m, 0, n, True)

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = self.k_for(n)
        if m <= k:
            return self.subproof(m, lo, lo + k, b) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]


# --- reference values: RFC 6962 / Certificate Transparency test inputs -----------------------

CT_ENTRIES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]
CT_ROOTS = [bytes.fromhex(h) for h in [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]]
H_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_BC1A = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_CA85 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_D37E = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
H_0EBC = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
H_B086 = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"
H_6E34 = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
H_FAC5 = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
# (leaf index, tree size, audit path)
CT_INCLUSION = [
    (0, 1, []),
    (0, 8, [H_96A2, H_5F08, H_6B47]),
    (5, 8, [H_BC1A, H_CA85, H_D37E]),
    (2, 3, [H_FAC5]),
    (1, 5, [H_6E34, H_5F08, H_BC1A]),
]
# (old size, new size, proof)
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, [H_96A2, H_5F08, H_6B47]),
    (6, 8, [H_0EBC, H_CA85, H_D37E]),
    (2, 5, [H_5F08, H_BC1A]),
    (6, 7, [H_0EBC, H_B086, H_D37E]),
]


# --- fixtures --------------------------------------------------------------------------------


class CountingReader:
    """read_hashes over a MemoryTree that records every call."""

    def __init__(self, tree: MemoryTree, limit: int | None = None) -> None:
        self.tree, self.limit, self.calls = tree, limit, []

    def __call__(self, indexes: list[int]) -> list[bytes]:
        self.calls.append(list(indexes))
        if self.limit is not None:
            assert all(0 <= i < self.limit for i in indexes), "read beyond the stored hashes"
        return self.tree.read_hashes(indexes)


@pytest.fixture(scope="module")
def entries() -> list[bytes]:
    return [f"evidence entry {i}".encode() for i in range(MAX_SIZE)]


@pytest.fixture(scope="module")
def naive(entries) -> NaiveRFC6962:
    return NaiveRFC6962(entries)


@pytest.fixture(scope="module")
def tree(entries) -> MemoryTree:
    t = MemoryTree()
    for e in entries:
        t.append(e)
    return t


def flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8 % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


# --- reference values ------------------------------------------------------------------------


def test_naive_implementation_reproduces_ct_reference_roots():
    naive = NaiveRFC6962(CT_ENTRIES)
    assert [naive.mth(0, n) for n in range(9)] == CT_ROOTS


def test_stored_tree_reproduces_ct_roots_and_proofs():
    t = MemoryTree()
    assert t.root() == CT_ROOTS[0] == EMPTY_ROOT
    for n, e in enumerate(CT_ENTRIES, start=1):
        t.append(e)
        assert t.root() == CT_ROOTS[n]
        assert root_from_leaf_hashes(leaf_hash(x) for x in CT_ENTRIES[:n]) == CT_ROOTS[n]
    for n, size, path in CT_INCLUSION:
        proof = t.inclusion_proof(n, size)
        assert [p.hex() for p in proof] == path
        verify_inclusion(size, n, CT_ROOTS[size], leaf_hash(CT_ENTRIES[n]), proof)
    for old, new, path in CT_CONSISTENCY:
        proof = t.consistency_proof(old, new)
        assert [p.hex() for p in proof] == path
        verify_consistency(new, old, CT_ROOTS[new], CT_ROOTS[old], proof)


def test_hash_domain_separation():
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    left, right = b"a" * 32, b"b" * 32
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert merkle.node_hash(left, right) != leaf_hash(left + right)


# --- roots and proofs against the naive implementation ---------------------------------------


def test_roots_match_naive_for_every_size(tree, naive):
    leaves = [tree.hashes[stored_hash_index(0, i)] for i in range(MAX_SIZE)]
    for t in range(MAX_SIZE + 1):
        assert tree.root(t) == naive.mth(0, t), t
    for t in [0, 1, 2, 3, 63, 64, 65, 255, 256, 257, MAX_SIZE]:
        assert root_from_leaf_hashes(iter(leaves[:t])) == naive.mth(0, t), t


def test_inclusion_proofs_match_naive_for_every_pair(tree, naive):
    for t in range(1, MAX_SIZE + 1):
        root = tree.root(t)
        for n in range(t):
            proof = tree.inclusion_proof(n, t)
            assert proof == naive.path(n, 0, t), (t, n)
            verify_inclusion(t, n, root, leaf_hash(naive.entries[n]), proof)


def test_consistency_proofs_match_naive_for_every_pair(tree, naive):
    for t in range(1, MAX_SIZE + 1):
        root = tree.root(t)
        for n in range(1, t + 1):
            proof = tree.consistency_proof(n, t)
            assert proof == naive.proof(n, t), (t, n)
            verify_consistency(t, n, root, tree.root(n), proof)


# --- tampering -------------------------------------------------------------------------------


def leaf_indexes():
    """(t, n): leaf n of a tree of size t, for the tampering sizes."""
    return [(t, n) for t in TAMPER_SIZES for n in range(t)]


def old_sizes():
    """(t, n): an older size n of a tree of size t, for the tampering sizes."""
    return [(t, n) for t in TAMPER_SIZES for n in range(1, t + 1)]


def test_tampered_inclusion_proofs_fail(tree, naive):
    for t, n in leaf_indexes():
        root, leaf = tree.root(t), leaf_hash(naive.entries[n])
        proof = tree.inclusion_proof(n, t)
        bad = [proof[:i] + [flip(p, 7 * i + n)] + proof[i + 1:] for i, p in enumerate(proof)]
        bad += [proof + [root], [root] + proof, proof[:-1] if proof else [leaf]]
        for b in bad:
            assert_inclusion_fails(t, n, root, leaf, b)
        assert_inclusion_fails(t, n, flip(root, n), leaf, proof)
        assert_inclusion_fails(t, n, root, flip(leaf, t), proof)
        for wrong_n in {n - 1, n + 1, n ^ 2} - {n}:
            assert_inclusion_fails(t, wrong_n, root, leaf, proof)
        for wrong_t in {t - 1, t + 1, t * 2, t // 2} - {t}:
            if n < wrong_t <= MAX_SIZE and proof != naive.path(n, 0, wrong_t):
                assert_inclusion_fails(wrong_t, n, tree.root(wrong_t), leaf, proof)


def test_tampered_consistency_proofs_fail(tree, naive):
    for t, n in old_sizes():
        root_t, root_n = tree.root(t), tree.root(n)
        proof = tree.consistency_proof(n, t)
        bad = [proof[:i] + [flip(p, 5 * i + t)] + proof[i + 1:] for i, p in enumerate(proof)]
        bad += [proof + [root_t], [root_n] + proof, proof[:-1], proof[:1] + proof]
        for b in bad:
            if b != proof:
                assert_consistency_fails(t, n, root_t, root_n, b)
        assert_consistency_fails(t, n, flip(root_t, n), root_n, proof)
        assert_consistency_fails(t, n, root_t, flip(root_n, t), proof)
        if n < t:
            assert_consistency_fails(t, n, root_n, root_t, proof)
        for wrong_n in {n - 1, n + 1, n ^ 2} - {n}:
            if 0 < wrong_n <= t and proof != naive.proof(wrong_n, t):
                assert_consistency_fails(t, wrong_n, root_t, tree.root(wrong_n), proof)
        for wrong_t in {t - 1, t + 1, t * 2} - {t}:
            if n <= wrong_t <= MAX_SIZE and proof != naive.proof(n, wrong_t):
                assert_consistency_fails(wrong_t, n, tree.root(wrong_t), root_n, proof)


def assert_inclusion_fails(t, n, root, leaf, proof):
    with pytest.raises(EvidenceTampered):
        verify_inclusion(t, n, root, leaf, proof)


def assert_consistency_fails(t, n, root_t, root_n, proof):
    with pytest.raises(EvidenceTampered):
        verify_consistency(t, n, root_t, root_n, proof)


def test_verification_failures_say_why(tree):
    proof = tree.inclusion_proof(5, 8)
    with pytest.raises(EvidenceTampered, match="too many hashes"):
        verify_inclusion(8, 5, tree.root(8), tree.hashes[stored_hash_index(0, 5)], proof + proof)
    with pytest.raises(EvidenceTampered, match="too few hashes"):
        verify_inclusion(8, 5, tree.root(8), tree.hashes[stored_hash_index(0, 5)], proof[:1])
    with pytest.raises(EvidenceTampered, match="is not in the log of 8 entries"):
        verify_inclusion(8, 5, tree.root(8), leaf_hash(b"forged"), proof)
    with pytest.raises(EvidenceTampered, match="31 bytes"):
        verify_inclusion(8, 5, tree.root(8), leaf_hash(b"x"), [proof[0][:31], *proof[1:]])
    with pytest.raises(EvidenceTampered, match="cannot be in a log of 8 entries"):
        verify_inclusion(8, 8, tree.root(8), leaf_hash(b"x"), proof)
    consistency = tree.consistency_proof(6, 8)
    with pytest.raises(EvidenceTampered, match="from 6 to 8 has too few hashes"):
        verify_consistency(8, 6, tree.root(8), tree.root(6), consistency[:-1])
    with pytest.raises(EvidenceTampered, match="from 6 to 8 has too many hashes"):
        verify_consistency(8, 6, tree.root(8), tree.root(6), consistency + consistency[:1])
    with pytest.raises(EvidenceTampered, match="does not extend"):
        verify_consistency(8, 6, tree.root(7), tree.root(6), tree.consistency_proof(6, 8))
    with pytest.raises(EvidenceTampered, match="two different roots"):
        verify_consistency(8, 8, tree.root(8), tree.root(7), [])
    with pytest.raises(EvidenceTampered, match="no consistency proof"):
        verify_consistency(8, 0, tree.root(8), EMPTY_ROOT, [])
    assert "does not verify" in str(EvidenceTampered("x"))


def test_impossible_proof_requests_are_programming_errors(tree):
    with pytest.raises(ValueError):
        inclusion_proof(8, 8, tree.read_hashes)
    with pytest.raises(ValueError):
        consistency_proof(8, 0, tree.read_hashes)
    with pytest.raises(ValueError):
        consistency_proof(8, 9, tree.read_hashes)
    with pytest.raises(ValueError):
        tree.root(MAX_SIZE + 1)
    with pytest.raises(ValueError):
        stored_hashes_for_append(3, b"short", tree.read_hashes)


def test_missing_stored_hashes_are_reported(tree):
    with pytest.raises(EvidenceTampered, match="missing"):
        tree_hash(7, lambda indexes: [tree.hashes[i] for i in indexes[:-1]])


# --- the stored layout -----------------------------------------------------------------------


def test_every_stored_hash_is_the_root_of_its_aligned_subtree(tree, naive):
    n = MAX_SIZE
    seen = {}
    for level in range(n.bit_length()):
        for j in range(n >> level):
            index = stored_hash_index(level, j)
            assert tree.hashes[index] == naive.mth(j << level, (j + 1) << level)
            seen[index] = (level, j)
    assert sorted(seen) == list(range(stored_hash_count(n))) == list(range(len(tree.hashes)))


def test_appends_only_add_hashes_amortised_two_each(entries):
    t = MemoryTree()
    for n, e in enumerate(entries):
        before = list(t.hashes)
        reader = CountingReader(t, limit=stored_hash_count(n))
        new = stored_hashes_for_append(n, leaf_hash(e), reader)
        assert len(reader.calls) <= 1
        assert len(new) == stored_hash_count(n + 1) - stored_hash_count(n)
        assert len(new) == 1 + merkle._trailing_ones(n) <= n.bit_length() + 1
        t.hashes.extend(new)
        t.size += 1
        assert t.hashes[: len(before)] == before
    assert stored_hash_count(MAX_SIZE) == len(t.hashes) <= 2 * MAX_SIZE
    million = stored_hash_count(1_000_000)
    assert 1.99 < million / 1_000_000 <= 2


def test_prehashed_append_matches_plain_append(entries):
    a, b = MemoryTree(), MemoryTree()
    for e in entries[:40]:
        assert a.append(e) == b.append(leaf_hash(e), prehashed=True)
    assert a.hashes == b.hashes and a.root() == b.root()


def test_each_operation_reads_one_small_batch(tree):
    for t in [1, 2, 7, 64, 127, 200, MAX_SIZE]:
        for op, arg in [(tree_hash, None), (inclusion_proof, t - 1), (inclusion_proof, t // 3),
                        (consistency_proof, max(1, t // 3)), (consistency_proof, t - 1 or 1)]:
            reader = CountingReader(tree, limit=stored_hash_count(t))
            op(t, reader) if arg is None else op(t, arg, reader)
            assert len(reader.calls) <= 1
            assert sum(map(len, reader.calls)) <= 2 * t.bit_length() + 1


def test_streaming_root_of_a_large_log():
    t = MemoryTree()
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(5000)]
    for h in leaves:
        t.append(h, prehashed=True)
    assert root_from_leaf_hashes(iter(leaves)) == t.root()
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    with pytest.raises(EvidenceTampered):
        root_from_leaf_hashes([leaves[0], b"short"])
