"""Every released store opens with today's code: migrations upgrade it and nothing is lost."""

import shutil
from pathlib import Path

import pytest

from appliance.node import Node
from appliance.storage import latest_version

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stores"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_a_released_store_upgrades_and_keeps_its_evidence(tmp_path, name):
    home = tmp_path / name
    shutil.copytree(FIXTURES / name, home)
    with Node.open(home, b"fixture passphrase v1") as node:
        assert node.store.db.schema_version == latest_version("appliance.storage.migrations")
        assert node.identity.name == "固定样本节点"
        assert [r.seq for r in node.identity.key_records()] == [0, 1]
        report = node.verify_evidence()
        assert report.ok, report.problems
        assert report.size >= 12  # created + 10 records + rotation
        node.evidence.record("test.after_upgrade", "urn:fixture:new")
    with Node.open(home, b"fixture passphrase v1") as node:
        assert node.verify_evidence().ok
