"""`dsnode space …` and `dsnode run` in child processes, against a real mosquitto."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from appliance.crypto.keys import SigningKey
from appliance.node import Node
from appliance.services.sync import SpaceConfig
from appliance.storage.keysource import KeyFile
from tests.brokers import Mosquitto
from tests.e2e.conftest import ROOT

SPACE = "e2e-space"


def _add_space(cli, broker, *, catalog: dict | None = None) -> str:
    """Put the node in a space (as `dsnode space join` would) and, optionally, queue a listing."""
    with Node.open(cli.home, KeyFile(cli.key_file).read()) as node:
        did = node.identity.did
        cfg = SpaceConfig(SPACE, "端到端空间", SigningKey.generate().did, "127.0.0.1", broker.port, None, did, "x",
                          "member", None)
        node.store.db.write(lambda c: node.sync.add_space(c, cfg))
        if catalog:
            node.store.db.write(lambda c: node.sync.publish(c, SPACE, topic=f"catalog/{did}/ds-1",
                                                            type="dsnode.catalog.entry", body=catalog, retained=True))
    return did


def test_space_commands_without_spaces(initialised):
    out = initialised.run("space", "list").stdout
    assert "space join" in out
    assert json.loads(initialised.run("space", "status", "--json").stdout) == []
    proc = initialised.run("space", "catalog", "nowhere", ok=False)
    assert proc.returncode == 81 and "nowhere" in proc.stderr


def test_space_sync_once_sends_the_queue_and_reports(initialised, tmp_path):
    broker = Mosquitto(tmp_path / "broker")
    try:
        _add_space(initialised, broker, catalog={"title": "车间能耗数据"})
        status = json.loads(initialised.run("space", "status", "--json").stdout)
        assert status[0]["queued"] == 1 and status[0]["state"] == "stopped"  # the listing, saved before sending
        out = initialised.run("space", "sync", "--once", "--timeout", "20").stdout
        assert SPACE in out
        after = json.loads(initialised.run("space", "status", "--json").stdout)[0]
        assert after["queued"] == 0 and after["last_sync"]
        zh = initialised.run("space", "status", env=initialised.env(DSNODE_LANG="zh_CN")).stdout
        assert "成员" in zh and "member" not in zh  # the membership in words, not the stored value
        listed = initialised.run("space", "list", "--json").stdout
        assert json.loads(listed)[0]["space_id"] == SPACE and json.loads(listed)[0]["status"] == "member"
        zh = initialised.run("space", "list", env=initialised.env(DSNODE_LANG="zh_CN")).stdout
        assert "[成员]" in zh and "member" not in zh
    finally:
        broker.stop()


def test_space_sync_reports_an_unreachable_broker(initialised, tmp_path):
    broker = Mosquitto(tmp_path / "broker")
    _add_space(initialised, broker)
    broker.stop()
    proc = initialised.run("space", "sync", "--once", "--timeout", "3", ok=False)
    assert proc.returncode == 86, proc.stderr
    assert "still queued" not in proc.stderr and SPACE in proc.stderr


def test_run_stays_in_sync_until_sigterm_and_stops_cleanly(initialised, tmp_path):
    broker = Mosquitto(tmp_path / "broker")
    try:
        _add_space(initialised, broker)
        proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--log-level", "INFO"], cwd=ROOT,
                                env=initialised.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(json.loads(line))
            if lines[-1].get("event") == "SyncStateChanged" and lines[-1].get("state") == "connected":
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        lines += [json.loads(line) for line in err.splitlines() if line.strip()]
        states = [e["state"] for e in lines if e.get("event") == "SyncStateChanged"]
        assert states[:2] == ["connecting", "connected"] and states[-1] == "stopped"
        assert all(isinstance(e, dict) for e in lines)  # one JSON object per line, logs included
    finally:
        broker.stop()


def test_space_catalog_searches_the_cached_catalog_offline_and_shows_titles(initialised):
    """Entries cached from the space (approved by its operator) are searched with no broker at all."""
    from appliance.services.membership.statements import listing_approval
    from appliance.services.sync import catalog_cache

    operator = SigningKey.generate()
    with Node.open(initialised.home, KeyFile(initialised.key_file).read()) as node:
        cfg = SpaceConfig(SPACE, "端到端空间", operator.did, "127.0.0.1", 1, None, node.identity.did, "x", "member",
                          None)
        node.store.db.write(lambda c: node.sync.add_space(c, cfg))
        for dataset, title in (("ds-1", "注塑机温度数据"), ("ds-2", "冲压车间能耗")):
            entry = {"@type": "Dataset", "dct:title": title, "odrl:hasPolicy": [{
                "@id": f"urn:offer:{dataset}", "@type": "odrl:Offer", "permission": [{"action": "use", "constraint": [
                    {"leftOperand": "count", "operator": "lteq", "rightOperand": 3}]}]}]}
            body = {"dataset_id": dataset, "entry": entry,
                    "approval": listing_approval(operator, space_id=SPACE, operator_did=operator.did,
                                                 provider="did:key:zProvider", dataset_id=dataset, entry=entry,
                                                 approved_at="2026-11-01T00:00:00Z")}
            node.store.db.write(lambda c, dataset=dataset, body=body: catalog_cache.upsert(
                c, SPACE, "did:key:zProvider", dataset, body, f"m-{dataset}", "2026-11-01T00:00:00Z"))
    out = initialised.run("space", "catalog", SPACE, "注塑").stdout
    assert "ds-1" in out and "注塑机温度数据" in out and "ds-2" not in out
    assert "at most 3 times" in out  # the offer's terms in the user's language (English here)
    zh = initialised.run("space", "catalog", SPACE, "注塑", env=initialised.env(DSNODE_LANG="zh_CN")).stdout
    assert "最多 3 次" in zh and "times" not in zh
    hits = json.loads(initialised.run("space", "catalog", SPACE, "能耗", "--json").stdout)
    assert [h["dataset_id"] for h in hits] == ["ds-2"]
