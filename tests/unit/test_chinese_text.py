"""What a Chinese user reads is Chinese: every error message, every help page, every catalog text.

A run of English words inside zh_CN output ("…仅限用于 purpose eq dpv:AcademicResearch") means a
text was not translated or a raw value was printed. Names, ids, commands in backquotes, option
names, placeholders and a few technical terms are not prose and pass (the rule of
``test_error_language``: ``WORDS`` outside ``ALLOWED``).
"""

from __future__ import annotations

import argparse
import re
import string

import pytest

from appliance import i18n
from edge import cli
from tests.unit.test_error_language import ALLOWED, WORDS
from tests.unit.test_messages import _error_classes

# Terms Chinese staff read as they are, in docs and on screens; each may sit next to another
# (DCAT JSON-LD, TLS MQTT). Keep this short: a term earns its place by having no usual Chinese word.
TERMS = re.compile(r"\b(?:JSON-LD|JSON|CSV|ODRL|DSP|DCAT|DPV|MQTT|TLS|HTTP|URL|IRI|API|SQLite|TOML|ISO|"
                   r"W3C|VC|Ctrl-C|SIGTERM|systemd|mosquitto)\b")
PLACEHOLDERS = re.compile(r"\{[^{}]*\}")


def english_runs(text: str, names: frozenset[str] = frozenset()) -> list[str]:
    """The runs of English words in ``text`` once names, placeholders and known terms are taken out."""
    text = ALLOWED.sub(" ", PLACEHOLDERS.sub(" ", text))
    if names:
        text = re.sub("|".join(rf"(?<![\w-]){re.escape(n)}(?![\w-])" for n in sorted(names, key=len, reverse=True)),
                      " ", text)
    return WORDS.findall(TERMS.sub(" ", text))


def test_the_check_finds_prose_and_lets_names_through():
    assert english_runs("合同已 expired on 2026-01-01")
    assert english_runs("身份 member pending")
    assert not english_runs("运行 `dsnode contract list`，或用 --home 指定 {} 的文件夹")
    assert not english_runs("输出 DCAT JSON-LD（did:key）")
    assert not english_runs("位置参数：SPACE DATASET", frozenset({"SPACE", "DATASET"}))


def _fields(text: str) -> int:
    return sum(1 for _, name, _, _ in string.Formatter().parse(text) if name is not None)


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_renders_in_chinese(cls):
    samples = ["节点甲", "did:key:z6MkSample", "42", "/srv/dsnode", "2026-05-01", "x7", "3", "8"]
    err = cls(*(samples * 2)[:_fields(cls.__doc__ or "")])
    text = err.message("zh_CN")
    assert not english_runs(text), f"{cls.__name__}: {text}"


def test_every_chinese_catalog_text_is_chinese():
    english = {k: v for k, v in i18n.catalog("zh_CN").items() if english_runs(v)}
    assert not english, "English inside zh_CN texts:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(english.items()))


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    yield from cli._all_subparsers(parser)


def _names(parser: argparse.ArgumentParser) -> frozenset[str]:
    """What a help page shows that the user types: the program, options, metavars, choices."""
    names = set(parser.prog.split())
    for action in parser._actions:
        names.update(action.option_strings)
        metavar = action.metavar if action.metavar is not None else action.dest
        names.update([metavar] if isinstance(metavar, str) else metavar or ())
        if not action.option_strings and isinstance(action.dest, str):
            names.add(action.dest)
        names.update(str(c) for c in action.choices or ())
        names.update(a.dest for a in getattr(action, "_choices_actions", ()))
    return frozenset(n for n in names if n and n != argparse.SUPPRESS)


def test_every_help_page_reads_in_chinese():
    with i18n.using_lang("zh_CN"):
        parser = cli.build_parser()
        pages = {p.prog: (p.format_help(), _names(p)) for p in _parsers(parser)}
    assert len(pages) > 20
    english = {prog: runs for prog, (text, names) in pages.items() if (runs := english_runs(text, names))}
    assert not english, f"English inside zh_CN help pages: {english}"
    assert "用法" in pages["dsnode"][0]


def test_a_failed_constraint_reads_in_words_in_chinese_and_keeps_its_raw_form_for_json():
    from datetime import datetime, timezone

    from appliance.domain import odrl
    from appliance.domain.odrl import Constraint, Policy, Rule
    from appliance.services.contracts import terms

    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    policy = Policy("urn:dsnode:offer:test", permissions=(Rule("use", (
        Constraint("purpose", "isAnyOf", ["https://w3id.org/dpv#AcademicResearch"]),
        Constraint("dateTime", "lt", "2026-02-01T00:00:00Z"), Constraint("count", "lteq", 3))),))
    failures = odrl.evaluate(policy, {"now": now, "action": "use", "purpose": "marketing", "use_count": 3})
    assert [f.code for f in failures] == ["mismatch", "expired", "count_used_up"]
    for f in failures:
        assert not english_runs(f.zh) and f.constraint.split()[0] not in f.zh, f.zh
        assert f.constraint in f.en
    assert "学术研究" in failures[0].zh
    rows = [terms.failure_json(f) for f in failures]
    assert rows[0]["constraint"].startswith("purpose isAnyOf") and rows[1]["constraint"].startswith("dateTime lt")
    said = terms.explain("-", {terms.FAILURES: rows}, "zh_CN")
    assert said.count("；") == 2 and "; " not in said
    assert terms.explain("-", {terms.FAILURES: rows}, "en").count("; ") == 2


def test_an_offer_summary_speaks_the_users_language():
    from appliance.services.contracts import terms

    offer = {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "@id": "urn:dsnode:offer:x",
             "permission": [{"action": "use", "constraint": [
                 {"leftOperand": "count", "operator": "lteq", "rightOperand": 5}]}]}
    with i18n.using_lang("en"):
        english = terms.offer_summary(offer)
    with i18n.using_lang("zh_CN"):
        chinese = terms.offer_summary(offer)
    assert english != chinese and not english_runs(chinese) and english_runs(english)


def test_a_listings_pricing_and_compliance_read_as_words():
    from edge import cmd_operator

    offer = {"@id": "urn:offer:x", "@type": "Offer", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "count", "operator": "lteq", "rightOperand": 5}]}]}
    with i18n.using_lang("zh_CN"):
        pricing = cmd_operator._pricing([offer, offer])
        assert "5 次" in pricing and "；" in pricing and "permission" not in pricing
        assert cmd_operator._pricing(None) == "-" and cmd_operator._compliance(None) == "-"
        assert cmd_operator._words("listing_status", ["pending", "odd"]) == (["待审核", "odd"], 6)
    with i18n.using_lang("en"):
        assert cmd_operator._words("member_status", ["member", "revoked"])[0] == ["member", "revoked"]
        assert "5 times" in cmd_operator._pricing(offer)
    assert cmd_operator._compliance({"gdpr": True}) == '{"gdpr": true}'
