"""The evidence log on a real encrypted store: appends, proofs, checkpoints, tamper detection."""

import json

import pytest

from appliance.crypto import merkle
from appliance.errors import BundleInvalid, EvidenceWriteFailed
from appliance.services.evidence_bundle import verify_bundle

pytestmark = pytest.mark.usefixtures("english")


def _fill(node, n, subject="urn:x"):
    for i in range(n):
        node.evidence.record("test.step", f"{subject}:{i % 3}", {"i": i, "名称": "数据"})


def _raw(node, sql, args=()):
    """Edit the store behind the log's back, as an attacker with the key would."""

    def work(conn):
        conn.execute("DROP TRIGGER IF EXISTS evidence_entry_append_only_update")
        conn.execute("DROP TRIGGER IF EXISTS evidence_entry_append_only_delete")
        conn.execute(sql, args)

    node.store.db.write(work)


def test_a_new_node_has_its_creation_on_record(node):
    first = node.evidence.get(0)
    assert first.action == "node.created" and first.subject == node.identity.did
    assert node.verify_evidence().ok


def test_root_and_proofs_match_an_in_memory_tree(node):
    _fill(node, 40)
    entries = list(node.evidence.entries())
    tree = merkle.MemoryTree()
    for e in entries:
        tree.append(e.leaf_data())
    assert node.evidence.root() == tree.root()
    size = len(entries)
    for i in (0, 7, size - 1):
        proof = node.evidence.inclusion_proof(i, size)
        merkle.verify_inclusion(size, i, tree.root(), merkle.leaf_hash(entries[i].leaf_data()), proof)
    old_root = node.evidence.root(13)
    merkle.verify_consistency(size, 13, tree.root(), old_root, node.evidence.consistency_proof(13, size))


def test_the_log_refuses_edits_through_sql(node):
    with pytest.raises(Exception, match="append-only"):
        node.store.db.write(lambda c: c.execute("UPDATE evidence_entry SET action = 'x' WHERE idx = 0"))
    with pytest.raises(Exception, match="append-only"):
        node.store.db.write(lambda c: c.execute("DELETE FROM evidence_entry"))


@pytest.mark.parametrize(
    "tamper, expect",
    [
        ("UPDATE evidence_entry SET action = 'test.other' WHERE idx = 5", "entry 5"),
        ("UPDATE evidence_entry SET ts = '2020-01-01T00:00:00.000Z' WHERE idx = 9", "entry 9"),
        ("UPDATE evidence_entry SET payload = '{\"i\":99}' WHERE idx = 3", "details of entry 3"),
        ("DELETE FROM evidence_entry WHERE idx = 4", "missing or out of order"),
        ("DELETE FROM evidence_entry WHERE idx >= 18", "deleted"),
        ("UPDATE evidence_entry SET idx = idx + 1000 WHERE idx = 6", "missing or out of order"),
        ("UPDATE evidence_entry SET hashes = CAST(substr(hashes, 1, 32) || zeroblob(32) AS BLOB) WHERE idx = 11",
         "tree hashes of entry 11"),
        ("UPDATE evidence_entry SET actor = CAST(X'FFFE41' AS TEXT) WHERE idx = 7", "entry 7"),
        ("UPDATE evidence_entry SET payload = 'not json' WHERE idx = 8", "entry 8"),
        ("UPDATE evidence_entry SET hashes = zeroblob(32) WHERE idx = 12", "entry 12"),
    ],
)
def test_verify_detects_every_kind_of_change(node, tamper, expect):
    _fill(node, 20)
    node.evidence.checkpoint()
    assert node.verify_evidence().ok
    _raw(node, tamper)
    report = node.verify_evidence()
    assert not report.ok
    assert any(expect in p for p in report.problems), report.problems


def test_swapping_two_entries_is_detected(node):
    _fill(node, 10)
    a, b = node.evidence.get(3), node.evidence.get(4)
    _raw(node, "UPDATE evidence_entry SET action = ?, subject = ?, payload_hash = ?, payload = ? WHERE idx = 3",
         (b.action, b.subject, b.payload_hash, json.dumps(b.payload)))
    _raw(node, "UPDATE evidence_entry SET action = ?, subject = ?, payload_hash = ?, payload = ? WHERE idx = 4",
         (a.action, a.subject, a.payload_hash, json.dumps(a.payload)))
    assert not node.verify_evidence().ok


def test_a_rewritten_history_no_longer_matches_an_earlier_checkpoint(node, tmp_path):
    """An attacker with the key rewrites an entry and rebuilds the whole tree and checkpoints;
    only a checkpoint kept outside the store (a witness, an earlier export) catches it."""
    _fill(node, 12)
    saved = node.evidence.checkpoint().note
    entries = list(node.evidence.entries())
    _raw(node, "DELETE FROM evidence_checkpoint")
    _raw(node, "DELETE FROM evidence_entry")
    from appliance.services.evidence import append_entry

    def rebuild(conn):
        for e in entries:
            action = "test.forged" if e.index == 5 else e.action
            append_entry(conn, ts=e.ts, actor=e.actor, action=action, subject=e.subject, payload=e.payload)

    node.store.db.write(rebuild)
    node.evidence.checkpoint()
    assert node.verify_evidence().ok  # self-consistent forgery...
    report = node.verify_evidence([saved])  # ...but not consistent with what was published
    assert not report.ok and "rewritten" in report.problems[0]


def test_an_action_whose_evidence_cannot_be_written_does_not_happen(node):
    node.store.db.write(lambda c: c.execute("CREATE TABLE widget (name TEXT)"))
    node.store.db.write(lambda c: c.execute(
        "CREATE TRIGGER evidence_full BEFORE INSERT ON evidence_entry BEGIN SELECT RAISE(ABORT, 'disk full'); END"))

    def action(conn):
        conn.execute("INSERT INTO widget VALUES ('made')")
        node.evidence.append(conn, action="widget.made", subject="urn:widget")

    with pytest.raises(EvidenceWriteFailed):
        node.store.db.write(action)
    assert node.store.db.read(lambda c: c.execute("SELECT count(*) FROM widget").fetchone()[0]) == 0


def test_old_checkpoints_still_verify_after_key_rotation(node, tmp_path):
    _fill(node, 5)
    before = node.evidence.checkpoint().note
    node.identity.rotate_key()
    _fill(node, 5)
    after = node.evidence.checkpoint().note
    assert before.splitlines()[-1] != after.splitlines()[-1]
    report = node.verify_evidence([before, after])
    assert report.ok and report.checkpoints >= 4
    bundle = tmp_path / "b.jsonl"
    node.export_evidence(bundle)
    assert verify_bundle(bundle).entries == node.evidence.size()


def test_a_whole_log_bundle_verifies_offline_and_catches_changes(node, tmp_path):
    _fill(node, 30)
    node.evidence.checkpoint()
    _fill(node, 3)
    bundle = tmp_path / "all.jsonl"
    count = node.export_evidence(bundle)
    report = verify_bundle(bundle)
    assert report.entries == count == node.evidence.size() and report.checkpoints >= 1

    lines = bundle.read_text(encoding="utf-8").splitlines()
    for index, mutate in [
        (4, lambda e: e.update(subject="urn:other")),
        (10, lambda e: e.update(payload={"i": -1})),
    ]:
        forged = list(lines)
        entry = json.loads(forged[index])
        mutate(entry)
        forged[index] = json.dumps(entry, ensure_ascii=False)
        bad = tmp_path / f"bad{index}.jsonl"
        bad.write_text("\n".join(forged) + "\n", encoding="utf-8")
        with pytest.raises(BundleInvalid):
            verify_bundle(bad)

    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text("\n".join(lines[:7] + lines[8:]) + "\n", encoding="utf-8")
    with pytest.raises(BundleInvalid, match="missing"):
        verify_bundle(dropped)
    reordered = tmp_path / "reordered.jsonl"
    reordered.write_text("\n".join(lines[:5] + [lines[6], lines[5]] + lines[7:]) + "\n", encoding="utf-8")
    with pytest.raises(BundleInvalid):
        verify_bundle(reordered)


def test_a_subject_bundle_carries_inclusion_proofs(node, tmp_path):
    _fill(node, 30, subject="urn:contract")
    bundle = tmp_path / "one.jsonl"
    count = node.export_evidence(bundle, subject="urn:contract:1")
    assert count == 10
    assert verify_bundle(bundle).entries == 10
    lines = bundle.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[3])
    entry["ts"] = "2030-01-01T00:00:00.000Z"
    lines[3] = json.dumps(entry)
    bundle.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BundleInvalid):
        verify_bundle(bundle)


def test_a_subject_bundle_with_a_genuine_entry_of_another_subject_or_a_repeated_one_is_refused(node, tmp_path):
    _fill(node, 30, subject="urn:contract")
    mine, other = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    node.export_evidence(mine, subject="urn:contract:1")
    node.export_evidence(other, subject="urn:contract:2")
    lines = mine.read_text(encoding="utf-8").splitlines()
    foreign = other.read_text(encoding="utf-8").splitlines()[1]  # genuine, with a valid inclusion proof
    assert json.loads(foreign)["subject"] == "urn:contract:2"
    for changed, why in ((lines + [foreign], "urn:contract:1"), (lines[:1] + [foreign] + lines[1:], "urn:contract:1"),
                         (lines + [lines[2]], "")):
        path = tmp_path / "changed.jsonl"
        path.write_text("\n".join(changed) + "\n", encoding="utf-8")
        with pytest.raises(BundleInvalid, match=why):
            verify_bundle(path)
    header = json.loads(lines[0])
    header["subject"] = None  # a partial bundle that does not say what it is about
    path.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n", encoding="utf-8")
    with pytest.raises(BundleInvalid):
        verify_bundle(path)
    assert verify_bundle(mine).entries == 10


@pytest.mark.parametrize("content", [b"", b"not json\n", b'{"format": "other"}\n', b"\xff\xfe\x00"])
def test_junk_is_not_a_bundle(tmp_path, content):
    path = tmp_path / "junk.jsonl"
    path.write_bytes(content)
    with pytest.raises(BundleInvalid):
        verify_bundle(path)
