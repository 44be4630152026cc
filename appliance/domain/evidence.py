"""Evidence: the kinds of state change that leave an entry in the node's evidence log.

An entry (what happened, who did it, to what, when, and the hash of the details) and the bytes the
log's Merkle tree commits to are :mod:`appliance.crypto.evidence_entry`.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """The kinds of state change that leave evidence. Later features add their own."""

    NODE_CREATED = "node.created"
    KEY_ROTATED = "identity.key_rotated"
    PASSPHRASE_CHANGED = "store.passphrase_changed"
    BACKUP_CREATED = "store.backup_created"
    STORE_RESTORED = "store.restored"
    SETTINGS_CHANGED = "settings.changed"
    CHECKPOINT_IMPORTED = "evidence.checkpoint_imported"
