"""Cryptography of the appliance: canonical JSON, keys and did:key, sealed data, signed
envelopes, verifiable credentials (and the evidence log's Merkle tree and checkpoints).

Each block below re-exports one module's public names; add a block per module.
"""

from appliance.crypto.jcs import MAX_SAFE_INTEGER, canonical, sha256
from appliance.crypto.keys import (
    SigningKey,
    box_public_key_from_did,
    did_from_public_key,
    multibase_decode,
    multibase_encode,
    public_key_from_did,
    verify,
)
from appliance.crypto.sealed import seal, unseal
from appliance.crypto.envelope import (
    decode as decode_envelope,
    encode as encode_envelope,
    format_ts,
    open_body,
    seal_body,
    sign_envelope,
    verify_envelope,
)
from appliance.crypto.vc import sign_credential, verify_credential
from appliance.crypto.statement import entry_sha256, sign_statement, verify_statement
from appliance.crypto.key_chain import KeyRecord, rotation_statement, verify_key_chain
from appliance.crypto.evidence_entry import EMPTY_DETAILS, EvidenceEntry, payload_hash
from appliance.crypto.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    stored_hash_count,
    stored_hash_index,
    stored_hashes_for_append,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)
from appliance.crypto.checkpoint import (
    Checkpoint,
    add_signature,
    key_id,
    open_checkpoint,
    open_note,
    parse_verifier_key,
    sign_note,
    verifier_key,
)

__all__ = ["Checkpoint", "EMPTY_DETAILS", "EMPTY_ROOT", "EvidenceEntry", "HASH_SIZE", "KeyRecord",
    "MAX_SAFE_INTEGER", "MemoryTree", "SigningKey", "entry_sha256", "payload_hash", "rotation_statement",
    "sign_statement", "verify_key_chain", "verify_statement",
    "add_signature", "box_public_key_from_did", "canonical", "consistency_proof", "decode_envelope",
    "did_from_public_key", "encode_envelope", "format_ts", "inclusion_proof", "key_id", "leaf_hash",
    "multibase_decode", "multibase_encode", "node_hash", "open_body", "open_checkpoint", "open_note",
    "parse_verifier_key", "public_key_from_did", "root_from_leaf_hashes", "seal", "seal_body", "sha256",
    "sign_credential", "sign_envelope", "sign_note", "stored_hash_count", "stored_hash_index",
    "stored_hashes_for_append", "tree_hash", "unseal", "verifier_key", "verify", "verify_consistency",
    "verify_credential", "verify_envelope", "verify_inclusion"
]
