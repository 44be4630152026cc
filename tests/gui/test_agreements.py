"""Agreements on the contracts page: the validity (from, until, the terms in words) on both sides,
and the provider retiring an agreement in force, which the consumer then shows as retired."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QInputDialog

from appliance import i18n
from appliance.settings import Settings
from tests.gui.test_language import english_left
from tests.spaces import SPACE, SpaceHarness, finalized, list_entry
from ui import dialogs
from ui.app import DesktopApp

TRIAL = {"@id": "urn:offer:trial", "@type": "odrl:Offer", "permission": [{"action": "use", "constraint": [
    {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": {"@value": "P30D", "@type": "xsd:duration"}},
    {"leftOperand": "count", "operator": "lteq", "rightOperand": {"@value": "5", "@type": "xsd:integer"}}]}]}
ENTRY = {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据", "odrl:hasPolicy": [TRIAL]}
WORDS = {"en": ("in force", "Valid from", "retired", "retired by the provider"),
         "zh_CN": ("生效中", "有效期自", "已撤销", "已被提供方撤销")}


@pytest.fixture
def agreed(tmp_path):
    """A provider and a consumer with an agreement in force (a rule approved it), each an app."""
    space = SpaceHarness(tmp_path / "space", embedded=True)
    provider, consumer = space.member("provider"), space.member("consumer")
    list_entry(space, provider, ENTRY, consumer)
    provider.contracts.add_rule({"dataset": "ds-1"})
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:trial")
    finalized(provider, consumer, cid)
    apps = []
    for node in (provider, consumer):
        app = DesktopApp(Settings(home=node.home, kdf_profile="minimum"))
        app.run(node)
        apps.append(app)
    yield apps
    dialogs.close_all()
    for app in apps:
        app.stop()
    space.close()


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_an_agreement_shows_its_validity_and_the_provider_retires_it(qtbot, agreed, lang):
    i18n.set_lang(lang)
    in_force, valid_from, retired, retired_why = WORDS[lang]
    try:
        provider_app, consumer_app = agreed
        mine = consumer_app.window.show_page("contracts")
        mine.list.selectRow(0)
        until = mine.list.item(0, 6).text()
        assert until[:2] == "20" and len(until) == 16, "an end date 30 days after the agreement"
        text = mine.agreement.text()
        assert in_force in text and valid_from in text and until in text
        assert "5" in text, "the terms in words name the use count"
        assert not mine.retire_b.isVisible() and not mine.terminate_b.isEnabled(), "the consumer cannot retire it"
        if lang == "zh_CN":
            assert not english_left(mine), english_left(mine)

        theirs = provider_app.window.show_page("contracts")
        theirs.list.selectRow(0)
        assert theirs.retire_b.isVisible() and theirs.retire_b.isEnabled()
        theirs.retire()
        ask = theirs.findChild(QInputDialog, "reason_dialog")
        ask.setTextValue("合同到期前停止合作")
        ask.accept()
        assert theirs.list.item(0, 6).text() == retired
        assert not theirs.retire_b.isEnabled(), "retired once"
        qtbot.waitUntil(lambda: mine.safe_refresh() or mine.list.item(0, 6).text() == retired, timeout=20000)
        mine.list.selectRow(0)
        assert retired_why in mine.agreement.text()
    finally:
        i18n.set_lang(None)
