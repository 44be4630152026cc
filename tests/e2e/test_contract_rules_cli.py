"""`dsnode contract rule` adds an auto-approval rule, `contract rules` lists them, `rule --remove N` removes one."""

from __future__ import annotations

import json


def test_rules_are_listed_numbered_and_removed_by_number(initialised):
    cli = initialised
    assert "No auto-approval rules" in cli.run("contract", "rules").stdout
    cli.run("contract", "rule", "--dataset", "ds-1", "--min-grade", "3")
    cli.run("contract", "rule", "--offer", "urn:offer:trial", "--org", "示例制造")
    rules = json.loads(cli.run("contract", "rules", "--json").stdout)
    assert [(r["id"], r.get("dataset"), r.get("offer")) for r in rules] == [
        (rules[0]["id"], "ds-1", None), (rules[1]["id"], None, "urn:offer:trial")]
    shown = cli.run("contract", "rules").stdout
    assert "ds-1" in shown and "3 or higher" in shown and "示例制造" in shown

    removed = cli.run("contract", "rule", "--remove", str(rules[0]["id"]))
    assert f"Removed auto-approval rule {rules[0]['id']}" in removed.stdout
    assert [r["offer"] for r in json.loads(cli.run("contract", "rules", "--json").stdout)] == ["urn:offer:trial"]
    # the removal is in the evidence log
    assert "rule_removed" in cli.run("evidence", "list", "--json").stdout


def test_removing_a_rule_that_is_not_there_or_with_other_options_says_what_to_do(initialised):
    cli = initialised
    missing = cli.run("contract", "rule", "--remove", "7", ok=False)
    assert missing.returncode != 0 and "no auto-approval rule 7" in missing.stderr
    mixed = cli.run("contract", "rule", "--remove", "1", "--dataset", "ds-1", ok=False)
    assert mixed.returncode != 0 and "only the rule's number" in mixed.stderr
    zh = cli.run("--lang", "zh_CN", "contract", "rule", "--remove", "7", ok=False)
    assert "不存在自动批准规则 7" in zh.stderr


def test_a_removed_rules_number_is_not_given_to_the_next_rule(initialised):
    """The number names the rule in the evidence log (rule:N added, removed): it never comes back."""
    cli = initialised
    cli.run("contract", "rule", "--dataset", "ds-1")
    cli.run("contract", "rule", "--dataset", "ds-2")
    last = json.loads(cli.run("contract", "rules", "--json").stdout)[-1]["id"]
    cli.run("contract", "rule", "--remove", str(last))
    cli.run("contract", "rule", "--dataset", "ds-3")
    numbers = [r["id"] for r in json.loads(cli.run("contract", "rules", "--json").stdout)]
    assert last not in numbers and numbers[-1] > last
