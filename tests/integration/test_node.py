"""The Node API over a real store: lifecycle, identity, passphrase, backup and restore."""

import pytest

from appliance.crypto import checkpoint as notes
from appliance.crypto.key_chain import verify_key_chain
from appliance.errors import StoreExists, WrongPassphrase
from appliance.node import Node
from appliance.storage import KdfParams

from .conftest import PASSPHRASE


def test_a_node_reopens_with_the_same_identity_and_log(tmp_path, node):
    did = node.identity.did
    node.evidence.record("test.step", "urn:x")
    node.close()
    with Node.open(tmp_path / "node", PASSPHRASE) as again:
        assert again.identity.did == did
        assert again.identity.name == "车间一号"
        st = again.status()
        assert st.evidence_entries == 2 and st.checkpoint_size == 2 and st.key_seq == 0


def test_init_refuses_an_existing_store(tmp_path, node):
    with pytest.raises(StoreExists):
        Node.init(tmp_path / "node", PASSPHRASE, name="again", kdf=KdfParams.fast())


def test_wrong_passphrase_opens_nothing(tmp_path, node):
    node.close()
    with pytest.raises(WrongPassphrase):
        Node.open(tmp_path / "node", b"not the passphrase")


def test_key_rotation_keeps_the_node_id_and_a_verifiable_chain(node):
    did = node.identity.did
    first_key = node.identity.current_key_did()
    record = node.identity.rotate_key()
    assert node.identity.did == did
    assert node.identity.current_key_did() == record.did != first_key
    records = node.identity.key_records()
    verify_key_chain(did, records)
    assert records[0].retired is not None and records[1].retired is None
    seeds = node.store.db.read(lambda c: c.execute("SELECT seq, seed IS NULL FROM identity_key").fetchall())
    assert seeds == [(0, 1), (1, 0)], "a retired private key must be erased"


def test_checkpoints_are_signed_notes_naming_the_node(node):
    cp = node.evidence.checkpoint()
    text = cp.note.split("\n\n")[0] + "\n"
    parsed = notes.Checkpoint.parse(text)
    assert parsed.size == 1 and parsed.origin.endswith(node.identity.did)
    assert f"— {node.identity.did} " in cp.note


def test_passphrase_change_is_recorded_and_only_the_new_one_opens(tmp_path, node):
    node.change_passphrase(PASSPHRASE, b"a brand new passphrase")
    assert [e.action for e in node.evidence.entries()][-1] == "store.passphrase_changed"
    node.close()
    with pytest.raises(WrongPassphrase):
        Node.open(tmp_path / "node", PASSPHRASE)
    with Node.open(tmp_path / "node", b"a brand new passphrase") as again:
        assert again.verify_evidence().ok


def test_backup_and_restore_bring_back_everything(tmp_path, node):
    for i in range(25):
        node.evidence.record("test.step", f"urn:{i}", {"i": i})
    backup = tmp_path / "node.backup"
    size = node.evidence.size()  # the backup holds these; its own "backup created" entry comes after
    node.backup(backup)
    assert node.evidence.get(size).action == "store.backup_created"
    did = node.identity.did
    node.close()
    with Node.restore(backup, tmp_path / "restored", PASSPHRASE) as restored:
        assert restored.identity.did == did
        assert restored.evidence.size() == size + 1  # plus the restore itself
        assert restored.evidence.get(size).action == "store.restored"
        assert restored.verify_evidence().ok
