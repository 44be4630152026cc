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
                  masking: list | None = None, cli_of: str = "consumer") -> tuple[str, str, Cli]:
    """``provider`` lists ``path`` as a product, ``consumer``'s contract for it is finalized by a rule;
    then the in-process node of ``cli_of`` (the consumer, or the provider) closes and its CLI is
    returned with the resource id and that side's negotiation id (the test runs it as a daemon)."""
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
    pid = finalized(provider, consumer, cid)
    node = consumer if cli_of == "consumer" else provider
    node.close()
    key = tmp_path / f"{cli_of}.key"
    key.write_text(f"passphrase {cli_of}")
    key.chmod(0o600)
    return rid, cid if cli_of == "consumer" else pid, Cli(node.home, key)


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
        assert item["name"] == "line3.csv" and "Objects of this delivery (1)" in shown and "line3.csv" in shown
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


def _slow_link(provider, bytes_per_s: float) -> None:
    """The provider's chunks go out at about ``bytes_per_s``, so that a kill falls in the middle."""
    read = provider.transfers._readers.read

    def slow(*args):
        data = read(*args)
        time.sleep(len(data) / bytes_per_s)
        return data

    provider.transfers._readers.read = slow


@pytest.mark.parametrize("path", ["direct", "relay"])
def test_a_consumer_node_killed_mid_transfer_goes_on_from_its_chunks_after_a_restart(tmp_path, path):
    """Direct: 200 MiB in 200 chunks at about 60 MB/s. Relay: 24 MiB in 24 chunks at about 5 MB/s,
    each in lane frames of 192 KiB; the node logs a line for each chunk, which once stopped it here
    for as long as the test did not read its output (Daemon reads it as it comes). The kill comes
    once a fifth of the chunks are kept."""
    space = SpaceHarness(tmp_path / "space")
    daemon = None
    try:
        provider, consumer = space.member("provider"), space.member("consumer")
        data = tmp_path / "data"
        data.mkdir()
        with open(data / "big.bin", "wb") as f:
            block = bytes(range(256)) * 4096
            for _ in range(200 if path == "direct" else 24):
                f.write(block)
        _, cid, cli = _contract_for(space, tmp_path, provider, consumer, data / "big.bin", kind="file")
        _slow_link(provider, 60e6 if path == "direct" else 5e6)
        daemon = Daemon(cli)
        cli.run("transfer", "start", cid, *(["--relay"] if path == "relay" else []))
        kept = 0
        for _ in range(600):
            (tr,) = json.loads(cli.run("transfer", "list", "--json").stdout)
            kept = tr["chunks_done"]
            if kept >= max(2, tr["chunks_total"] // 5):
                break
        daemon.kill()  # SIGKILL: no goodbye, no checkpoint
        daemon = None
        (tr,) = json.loads(cli.run("transfer", "list", "--json").stdout)  # the store opened by the CLI itself
        assert tr["state"] == "STARTED" and 0 < tr["chunks_done"] < tr["chunks_total"], tr
        assert tr["path"] == "relay" if path == "relay" else tr["path"].startswith("direct:")
        daemon = Daemon(cli)
        wait_for(lambda: json.loads(cli.run("transfer", "list", "--json").stdout)[0]["state"] == "COMPLETED", 60,
                 "the transfer to complete after the restart")
        (item,) = json.loads(cli.run("data", "list", "--json").stdout)
        import hashlib

        assert item["sha256"] == hashlib.sha256((data / "big.bin").read_bytes()).hexdigest()
    finally:
        if daemon is not None:
            daemon.stop()
        space.close()


def test_the_provider_pushes_a_folder_to_the_consumer_from_its_running_node(tmp_path):
    space = SpaceHarness(tmp_path / "space")
    daemon = None
    try:
        provider, consumer = space.member("provider"), space.member("consumer")
        folder = tmp_path / "data" / "batch"
        folder.mkdir(parents=True)
        files = {"a.csv": b"machine,temperature\nM1,20\n" * 2000, "b.bin": bytes(range(256)) * 3000}
        for name, data in files.items():
            (folder / name).write_bytes(data)
        _, pid, cli = _contract_for(space, tmp_path, provider, consumer, folder, cli_of="provider")
        daemon = Daemon(cli)
        unknown = cli.run("transfer", "start", "urn:uuid:nope", "--push", ok=False)
        assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
        pushed = cli.run("transfer", "start", pid, "--push", "--wait", "60")
        assert "completed" in pushed.stdout, pushed.stdout + pushed.stderr
        (tr,) = json.loads(cli.run("transfer", "list", "--json").stdout)
        assert (tr["role"], tr["mode"], tr["state"]) == ("provider", "push", "COMPLETED")
        assert tr["path"].startswith("direct:")
        zh = Cli(cli.home, cli.key_file, lang="zh_CN").run("transfer", "show", tr["id"]).stdout
        assert "推送" in zh and "直连" in zh and "已完成" in zh
        assert "a.csv" in zh and "b.bin" in zh, "the objects of the delivery"
        got = {r.name: r for r in consumer.transfers.received()}
        assert sorted(got) == sorted(files)
        for name, data in files.items():
            assert b"".join(consumer.transfers.open_received(got[name].object_id)) == data
        (theirs,) = consumer.transfers.list()
        assert theirs.mode == "push" and theirs.peer_pid == tr["id"]
        again = cli.run("transfer", "start", pid, "--relay", "--push", ok=False)  # one way or the other
        assert again.returncode == 2
    finally:
        if daemon is not None:
            daemon.stop()
        space.close()
