"""`dsnode transfer …` and `dsnode data list|show` in child processes: the consumer's node runs as
the daemon (`dsnode run`) and the CLI beside it asks for the data of a finalized contract, follows
it and lists what arrived; the provider is a member of a real space (tests/spaces.py)."""

from __future__ import annotations

import csv
import json
import time

import pytest

from tests.e2e.conftest import Cli
from tests.e2e.test_running_node import Daemon
from tests.spaces import SPACE, SpaceHarness, finalized, wait_for

pytestmark = pytest.mark.slow


def _contract_for(space, tmp_path, provider, consumer, path, *, kind: str | None = None,
                  masking: list | None = None) -> tuple[str, str, Cli]:
    """``provider`` lists ``path`` as a product, ``consumer``'s contract for it is finalized by a rule;
    then the consumer's in-process node closes and its CLI is returned with the resource id and the
    negotiation id (the test runs the consumer as a daemon of its own)."""
    provider.resources.allowed_roots = [path.parent]
    rid = provider.resources.register(str(path), title=path.stem, mode="hosted", kind=kind).resource.id
    if masking:
        provider.resources.set_masking(rid, masking)
    product = provider.products.create(title=path.stem, resource_ids=[rid],
                                       offers=[provider.products.offer_from_template("free-trial")])
    provider.products.request_listing(product.id, SPACE)
    space.operator.operator.approve_listing(wait_for(lambda: space.operator.operator.listings("pending"))[0].id)
    wait_for(lambda: consumer.sync.catalog(SPACE), what="the catalog entry")
    provider.contracts.add_rule({"dataset": product.id})
    cid = consumer.contracts.request(SPACE, product.id)
    finalized(provider, consumer, cid)
    consumer.close()
    key = tmp_path / "consumer.key"
    key.write_text("passphrase consumer")
    key.chmod(0o600)
    return rid, cid, Cli(consumer.home, key)


def test_the_consumer_asks_for_the_data_through_its_running_node_and_sees_it_arrive(tmp_path):
    space = SpaceHarness(tmp_path / "space")
    daemon = None
    try:
        provider, consumer = space.member("provider"), space.member("consumer")
        data = tmp_path / "data"
        data.mkdir()
        with open(data / "line3.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([["machine", "temperature", "operator"]] +
                                    [[f"M{i % 5}", 20 + i % 9, f"张{i}"] for i in range(5000)])
        rid, cid, cli = _contract_for(space, tmp_path, provider, consumer, data / "line3.csv",
                                      masking=[{"column": "operator", "rule": "pseudonymise"}])
        key = cli.key_file
        assert "No transfers yet" in cli.run("transfer", "list").stdout
        daemon = Daemon(cli)
        started = cli.run("transfer", "start", cid, "--wait", "60")
        assert "completed" in started.stdout, started.stdout + started.stderr
        (tr,) = json.loads(cli.run("transfer", "list", "--json").stdout)
        assert tr["state"] == "COMPLETED" and tr["path"].startswith("direct:")
        (item,) = json.loads(cli.run("data", "list", "--json").stdout)
        assert item["resource_id"] == rid and item["transfer_id"] == tr["id"]
        shown = cli.run("data", "show", item["object_id"][:12]).stdout
        assert item["sha256"] in shown and "only through the node" in shown
        zh = Cli(consumer.home, key, lang="zh_CN").run("transfer", "show", tr["id"]).stdout
        assert "已完成" in zh and "直连" in zh and "operator:pseudonymise" in zh and "使用方已于" in zh
        done = cli.run("transfer", "pause", tr["id"], ok=False)  # a completed transfer cannot be paused
        assert done.returncode == 150 and "COMPLETED" in done.stderr and "Traceback" not in done.stderr
        gone = cli.run("transfer", "show", "urn:uuid:nope", ok=False)
        assert gone.returncode == 160 and "dsnode transfer list" in gone.stderr
    finally:
        if daemon is not None:
            daemon.stop()
        space.close()


def test_a_consumer_node_killed_mid_transfer_goes_on_from_its_chunks_after_a_restart(tmp_path):
    space = SpaceHarness(tmp_path / "space")
    daemon = None
    try:
        provider, consumer = space.member("provider"), space.member("consumer")
        data = tmp_path / "data"
        data.mkdir()
        with open(data / "big.bin", "wb") as f:  # 200 MiB, 1,600 chunks
            block = bytes(range(256)) * 4096
            for _ in range(200):
                f.write(block)
        _, cid, cli = _contract_for(space, tmp_path, provider, consumer, data / "big.bin", kind="file")
        read = provider.transfers._readers.read

        def slow_link(*args):  # about 60 MB/s, so that the kill falls in the middle of the transfer
            time.sleep(0.002)
            return read(*args)

        provider.transfers._readers.read = slow_link
        daemon = Daemon(cli)
        cli.run("transfer", "start", cid)
        kept = 0
        for _ in range(600):
            (tr,) = json.loads(cli.run("transfer", "list", "--json").stdout)
            kept = tr["chunks_done"]
            if kept >= 50:
                break
        daemon.kill()  # SIGKILL: no goodbye, no checkpoint
        daemon = None
        (tr,) = json.loads(cli.run("transfer", "list", "--json").stdout)  # the store opened by the CLI itself
        assert tr["state"] == "STARTED" and 0 < tr["chunks_done"] < tr["chunks_total"], tr
        daemon = Daemon(cli)
        wait_for(lambda: json.loads(cli.run("transfer", "list", "--json").stdout)[0]["state"] == "COMPLETED", 120,
                 "the transfer to complete after the restart")
        (item,) = json.loads(cli.run("data", "list", "--json").stdout)
        import hashlib

        assert item["sha256"] == hashlib.sha256((data / "big.bin").read_bytes()).hexdigest()
    finally:
        if daemon is not None:
            daemon.stop()
        space.close()
