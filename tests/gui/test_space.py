"""Two members and the operator of a real space (the embedded broker), each an app: the operator
approves a listing in its queue, the consumer finds the product in the catalog and requests it, the
provider approves the request, and the consumer's contract is in force."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from appliance.settings import Settings
from tests.spaces import SPACE, SpaceHarness, wait_for
from ui.app import DesktopApp

PAID = {"@id": "urn:offer:paid", "@type": "odrl:Offer", "permission": [{"action": "use"}],
        "obligation": [{"action": "compensate", "constraint": [
            {"leftOperand": "payAmount", "operator": "eq", "rightOperand": {"@value": "200", "@type": "xsd:decimal"},
             "unit": "https://dbpedia.org/resource/Chinese_yuan"}]}]}
ENTRY = {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据", "dcat:keyword": ["注塑"], "odrl:hasPolicy": [PAID]}


@pytest.fixture
def space(tmp_path):
    harness = SpaceHarness(tmp_path / "space", embedded=True)
    apps: list[DesktopApp] = []

    def app_for(node) -> DesktopApp:
        app = DesktopApp(Settings(home=node.home, kdf_profile="minimum"))
        app.run(node)
        apps.append(app)
        return app

    harness.app_for = app_for
    yield harness
    for app in apps:
        app.stop()
    harness.close()


def test_a_listing_review_a_request_and_an_approval_end_in_a_contract_in_force(qtbot, space, english):
    provider, consumer = space.member("provider"), space.member("consumer")
    operator_app, provider_app, consumer_app = (space.app_for(n) for n in (space.operator, provider, consumer))

    queue = operator_app.window.show_page("operator")
    provider.membership.request_listing(SPACE, "ds-1", ENTRY)
    qtbot.waitUntil(lambda: queue.listings.rowCount() == 1, timeout=20000)
    queue.listings.selectRow(0)
    queue.approve()
    assert queue.listings.rowCount() == 0

    catalog = consumer_app.window.show_page("catalog")
    qtbot.waitUntil(lambda: catalog.safe_refresh() or catalog.results.rowCount() == 1, timeout=20000)
    assert catalog.results.item(0, 0).text() == "注塑机温度数据"
    catalog.results.selectRow(0)
    assert catalog.offer.count() == 1
    assert "200" in catalog.terms.text(), "the offer's terms in plain words name the price"
    catalog.request()
    contracts = consumer_app.window.page("contracts")
    assert consumer_app.window.pages_stack.currentWidget() is contracts

    approvals = provider_app.window.show_page("contracts")
    qtbot.waitUntil(lambda: approvals.safe_refresh() or approvals.list.rowCount() == 1, timeout=20000)
    approvals.list.selectRow(0)
    assert approvals.approve_b.isEnabled(), "the request waits for the provider's approval"
    approvals.approve()
    qtbot.waitUntil(lambda: contracts.safe_refresh() or (contracts.list.rowCount() == 1
                                                        and contracts.list.item(0, 4).text() == "in force"),
                    timeout=30000)
    contracts.list.selectRow(0)
    assert contracts.timeline.rowCount() >= 3
    transfers = consumer_app.window.show_page("transfers")
    assert transfers.agreements.count() == 1, "the agreement in force can start a transfer"


def test_the_provider_counters_with_terms_from_a_template_and_the_consumer_accepts(qtbot, space, english):
    provider, consumer = space.member("provider"), space.member("consumer")
    provider.membership.request_listing(SPACE, "ds-1", ENTRY)
    request = wait_for(lambda: space.operator.operator.listings("pending"))[0]
    space.operator.operator.approve_listing(request.id)
    wait_for(lambda: consumer.sync.catalog(SPACE))
    provider_app, consumer_app = space.app_for(provider), space.app_for(consumer)
    consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:paid")

    approvals = provider_app.window.show_page("contracts")
    qtbot.waitUntil(lambda: approvals.safe_refresh() or approvals.list.rowCount() == 1, timeout=20000)
    approvals.list.selectRow(0)
    approvals.counter()
    editor = approvals.counter_editor
    assert editor.summary.text(), "the terms are summed up as they are filled in"
    days = next(e for name, e in editor.param_edits.items() if "day" in name)
    days.setText("not a number")
    assert editor.summary.styleSheet().startswith("background: #fdecea"), "a wrong value is named at once"
    days.setText("30")
    approvals.counter_dialog.findChild(QDialogButtonBox).accepted.emit()
    assert not approvals.counter_dialog.isVisible()

    mine = consumer_app.window.show_page("contracts")
    qtbot.waitUntil(lambda: mine.safe_refresh() or (mine.list.rowCount() == 1
                                                    and mine.list.item(0, 4).text() == "offered"), timeout=20000)
    mine.list.selectRow(0)
    assert mine.approve_b.isEnabled(), "the consumer accepts or refuses the counter-offer"
    mine.approve()
    qtbot.waitUntil(lambda: mine.safe_refresh() or mine.list.item(0, 4).text() == "in force", timeout=30000)
