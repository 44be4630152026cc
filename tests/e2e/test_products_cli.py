"""`dsnode product …` and `dsnode search` as an edge-box admin uses them: real processes, real stores."""

import json

import pytest

from appliance.errors import NotInSpace, OfferTemplateError, ProductNotFound, ResourceNotUsable
from appliance.node import Node
from appliance.storage.keysource import KeyFile

from ..integration.resource_rows import add_resource

ORDERS = "urn:dsnode:resource:0a0a0a0a-1111-4222-8333-444444444444"


@pytest.fixture
def with_resources(initialised, key_file):
    """A node with two resources, written straight into its store (as if registered)."""
    with Node.open(initialised.home, KeyFile(key_file).read()) as node:
        add_resource(node, "采购订单明细", description="每日采购订单", keywords=["订单"], domain="制造",
                     columns=["order_id", "供应商名称"], category="important", sensitivity=2, rid=ORDERS)
        add_resource(node, "Sensor readings", description="产线温度", domain="制造", columns=["temperature"])
    return initialised


def test_create_show_list_search_in_chinese(with_resources):
    cli = with_resources
    cli.lang = "zh_CN"
    out = cli.run("product", "create", "--title", "订单数据包", "--resource", "0a0a0a0a", "--keyword", "订单",
                  "--offer", "free-trial:days=5", "--offer", "per-use-paid:price=3.5").stdout
    assert "已创建产品“订单数据包”" in out
    assert "您可以在协议生效后 5 天内使用数据，最多 10 次" in out and "每次使用支付 3.50 元" in out
    products = json.loads(cli.run("product", "list", "--json").stdout)
    (p,) = products
    assert p["status"] == "draft" and [r["id"] for r in p["resources"]] == [ORDERS]
    assert p["offers"][0]["summary"]["en"].startswith("You may use the data at most 10 times")
    shown = cli.run("product", "show", p["id"][-36:-28]).stdout
    assert "草稿（第 1 版）" in shown and "免费试用" in shown
    assert "采购订单明细（表格）" in shown and "（table）" not in shown  # the resource's kind in words
    assert p["resources"][0]["kind"] == "table"  # --json keeps the stored value
    listed = cli.run("resource", "list").stdout
    assert "表格" in listed and not any(word in listed for word in ("table", "hosted", "referenced"))
    found = cli.run("search", "订单").stdout
    assert "[产品] 订单数据包" in found and "[表格] 采购订单明细" in found
    hits = json.loads(cli.run("search", "供应商", "--kind", "resource", "--json").stdout)
    assert [h["ref"] for h in hits] == [ORDERS] and hits[0]["field"] == "columns"


def test_the_catalog_entry_and_lineage_in_english(with_resources):
    cli = with_resources
    pid = json.loads(cli.run("product", "create", "--title", "Orders", "--resource", ORDERS, "--offer", "research",
                             "--json").stdout)["id"]
    entry = json.loads(cli.run("product", "show", pid, "--jsonld").stdout)
    assert entry["@type"] == "Dataset" and entry["hasPolicy"][0]["@type"] == "Offer"
    shown = cli.run("product", "show", pid).stdout
    assert "only for academic research or non-commercial research" in shown
    assert pid in cli.run("product", "lineage", ORDERS).stdout
    templates = cli.run("product", "templates").stdout
    assert "per-use-paid  Pay per use" in templates and "price=(required)" in templates


def test_listing_in_a_space_the_node_has_not_joined_says_so(with_resources):
    cli = with_resources
    pid = json.loads(cli.run("product", "create", "--title", "Orders", "--resource", ORDERS, "--offer", "free-trial",
                             "--json").stdout)["id"]
    proc = cli.run("product", "list-in", pid, "space-a", ok=False)
    assert proc.returncode == NotInSpace.exit_code and "not a member of space space-a" in proc.stderr
    proc = cli.run("product", "delist", pid, "--reason", "stop", ok=False)
    assert proc.returncode == 78 and "nothing to delist" in proc.stderr


@pytest.mark.parametrize("args, error, words", [
    (["product", "create", "--title", "x", "--resource", "nope"], ResourceNotUsable, "no such resource"),
    (["product", "create", "--title", "x", "--resource", ORDERS, "--offer", "free-trial:days=0"], OfferTemplateError,
     "the smallest allowed is 1"),
    (["product", "create", "--title", "x", "--resource", ORDERS, "--offer", "per-use-paid"], OfferTemplateError,
     "price"),
    (["product", "show", "urn:dsnode:product:none"], ProductNotFound, "no data product"),
])
def test_mistakes_are_one_clear_line_with_their_exit_code(with_resources, args, error, words):
    proc = with_resources.run(*args, ok=False)
    assert proc.returncode == error.exit_code
    assert words in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
