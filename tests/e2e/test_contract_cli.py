"""`dsnode contract …` in child processes against nodes of a real space (tests/spaces.py)."""

from __future__ import annotations

import json

import pytest

from appliance.node import Node
from tests.e2e.conftest import Cli
from tests.spaces import SPACE, TIMERS, SpaceHarness, wait_for

pytestmark = pytest.mark.slow

ENTRY = {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据",
         "odrl:hasPolicy": [{"@id": "urn:offer:paid", "@type": "odrl:Offer", "permission": [{"action": "use"}]},
                            {"@id": "urn:offer:count", "@type": "odrl:Offer", "permission": [{"action": "use",
                             "constraint": [{"leftOperand": "count", "operator": "lteq", "rightOperand": 3}]}]}]}


def _cli(tmp_path, node: Node, label: str, lang: str = "en") -> Cli:
    key = tmp_path / f"{label}.key"
    key.write_text(f"passphrase {label}")
    key.chmod(0o600)
    return Cli(node.home, key, lang=lang)


def _reopen(space: SpaceHarness, label: str) -> Node:
    node = Node.open(space.root / label, b"passphrase " + label.encode(), sync_timers=TIMERS)
    space.nodes.append(node)
    node.start()
    return node


def test_request_approve_show_and_timeline_through_the_cli(tmp_path):
    space = SpaceHarness(tmp_path / "space")
    try:
        provider, consumer = space.member("provider"), space.member("consumer")
        provider.membership.request_listing(SPACE, "ds-1", ENTRY)
        request = wait_for(lambda: space.operator.operator.listings("pending"), what="the listing request")[0]
        space.operator.operator.approve_listing(request.id)
        wait_for(lambda: consumer.sync.catalog(SPACE), what="the catalog entry")
        consumer.close()
        ccli = _cli(tmp_path, consumer, "consumer")
        listed = ccli.run("space", "catalog", SPACE).stdout  # each offer's id and terms, not only in --json
        assert "offer urn:offer:paid:" in listed and "offer urn:offer:count:" in listed and "3" in listed
        unchosen = ccli.run("contract", "request", SPACE, "ds-1", ok=False)  # two offers: never pick one
        assert unchosen.returncode == 126
        assert all(word in unchosen.stderr for word in ("urn:offer:paid", "urn:offer:count", "--offer"))
        assert json.loads(ccli.run("contract", "list", "--json").stdout) == []
        out = ccli.run("contract", "request", SPACE, "ds-1", "--offer", "urn:offer:paid").stdout
        cid = json.loads(ccli.run("contract", "list", "--json").stdout)[0]["id"]
        assert cid in out and "Offer urn:offer:paid: " in out
        consumer = _reopen(space, "consumer")
        wait_for(lambda: provider.contracts.pending(), what="the request at the provider")
        provider.close()
        pcli = _cli(tmp_path, provider, "provider")
        (pending,) = json.loads(pcli.run("contract", "list", "--pending", "--json").stdout)
        assert pending["state"] == "REQUESTED" and pending["peer_pid"] == cid
        assert "REQUESTED" in pcli.run("contract", "show", pending["id"]).stdout
        pcli.run("contract", "approve", pending["id"])
        proc = pcli.run("contract", "approve", pending["id"], ok=False)
        assert proc.returncode == 123  # NotYourMove: already agreed
        provider = _reopen(space, "provider")
        wait_for(lambda: consumer.contracts.get(cid).state == "FINALIZED", what="FINALIZED")
        consumer.close()
        steps = json.loads(ccli.run("contract", "timeline", cid, "--json").stdout)
        assert [s["state_after"] for s in steps] == ["REQUESTED", "AGREED", "VERIFIED", "FINALIZED"]
        zh = _cli(tmp_path, consumer, "consumer", lang="zh_CN").run("contract", "timeline", cid).stdout
        assert "协议已生效" in zh and "对方" in zh and "签署协议" in zh  # states and events in words
        assert "FINALIZED" not in zh and "ContractAgreementMessage" not in zh
        assert "[协议已生效]" in _cli(tmp_path, consumer, "consumer", lang="zh_CN").run("contract", "list").stdout
        assert _cli(tmp_path, consumer, "consumer").run("contract", "show", "urn:nope", ok=False).returncode == 122
    finally:
        space.close()


def test_demand_publish_list_withdraw_through_the_cli(tmp_path):
    space = SpaceHarness(tmp_path / "space")
    try:
        consumer = space.member("consumer")
        consumer.close()
        cli = _cli(tmp_path, consumer, "consumer")
        out = cli.run("demand", "publish", SPACE, "注塑机温度数据", "--purpose", "质量分析", "--budget", "5000",
                      "--keyword", "注塑", "--days", "7").stdout
        (demand,) = json.loads(cli.run("demand", "list", SPACE, "--json").stdout)
        assert demand["id"] in out and demand["detail"]["keywords"] == ["注塑"] and demand["status"] == "open"
        cli.run("demand", "withdraw", demand["id"])
        assert json.loads(cli.run("demand", "list", "--json").stdout) == []
        assert "withdrawn" in cli.run("demand", "list", "--all").stdout
        assert cli.run("contract", "list").stdout.strip()  # the empty-list hint
    finally:
        space.close()


def test_a_request_for_an_unknown_space_or_dataset_says_what_to_do(initialised):
    from appliance.crypto.keys import SigningKey
    from appliance.errors import DatasetNotInCatalog, SpaceNotFound
    from appliance.services.sync import SpaceConfig
    from appliance.storage.keysource import KeyFile

    proc = initialised.run("contract", "request", "nowhere", "ds-1", ok=False)
    assert proc.returncode == SpaceNotFound.exit_code and "nowhere" in proc.stderr
    with Node.open(initialised.home, KeyFile(initialised.key_file).read()) as node:
        cfg = SpaceConfig(SPACE, "空间", SigningKey.generate().did, "127.0.0.1", 1, None, node.identity.did, "x",
                          "member", None)
        node.store.db.write(lambda c: node.sync.add_space(c, cfg))
    proc = initialised.run("contract", "request", SPACE, "ds-404", ok=False)
    assert proc.returncode == DatasetNotInCatalog.exit_code
    assert "ds-404" in proc.stderr and f"dsnode space catalog {SPACE}" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
