"""Two members and the operator of a real space (the embedded broker), each an app: the operator
approves a listing in its queue, the consumer finds the product in the catalog and requests it, the
provider approves the request, and the consumer's contract is in force."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox

from appliance.settings import Settings
from tests.spaces import SPACE, wait_for
from ui.app import DesktopApp

PAID = {"@id": "urn:offer:paid", "@type": "odrl:Offer", "permission": [{"action": "use"}],
        "obligation": [{"action": "compensate", "constraint": [
            {"leftOperand": "payAmount", "operator": "eq", "rightOperand": {"@value": "200", "@type": "xsd:decimal"},
             "unit": "https://dbpedia.org/resource/Chinese_yuan"}]}]}
ENTRY = {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据", "dcat:keyword": ["注塑"], "odrl:hasPolicy": [PAID]}


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
    qtbot.waitUntil(lambda: "A contract request waits for your approval." in provider_app.window.notifier.shown,
                    timeout=20000)
    approvals.approve()
    qtbot.waitUntil(lambda: contracts.safe_refresh() or (contracts.list.rowCount() == 1
                                                        and contracts.list.item(0, 4).text() == "in force"),
                    timeout=30000)
    contracts.list.selectRow(0)
    assert contracts.timeline.rowCount() >= 3
    transfers = consumer_app.window.show_page("transfers")
    assert transfers.agreements.count() == 1, "the agreement in force can start a transfer"
    peers = consumer_app.window.show_page("peers")
    names = [peers.list.item(i, 1).text() for i in range(peers.list.rowCount())]
    assert "provider" in names, "the other members of the space, by name"


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


def test_a_product_made_and_listed_in_the_app_is_delivered_with_progress(qtbot, space, tmp_path, english):
    from PySide6.QtCore import Qt

    provider, consumer = space.member("provider"), space.member("consumer")
    data = tmp_path / "data"
    data.mkdir()
    rows = [f"2026-11-01T{i % 24:02d}:00,M{i % 4},{60 + i % 9},张{i % 30}" for i in range(20000)]
    (data / "line3.csv").write_text("time,machine,temperature,operator\n" + "\n".join(rows) + "\n", encoding="utf-8")
    provider.resources.allowed_roots = [data]
    resource = provider.resources.register(str(data / "line3.csv"), mode="hosted").resource
    provider.resources.set_masking(resource.id, [{"column": "operator", "rule": "pseudonymise"}])
    provider_app, consumer_app = space.app_for(provider), space.app_for(consumer)

    products = provider_app.window.show_page("products")
    products.title_edit.setText("三号线温度")
    products.resources.item(0).setCheckState(Qt.CheckState.Checked)
    products.editor.template.setCurrentIndex(products.editor.template.findData("free-trial"))
    products.create()
    assert products.list.rowCount() == 1
    products.list.selectRow(0)
    products.list_in()
    request = wait_for(lambda: space.operator.operator.listings("pending"))[0]
    space.operator.operator.approve_listing(request.id)
    provider.contracts.add_rule({"dataset": request.dataset_id})

    catalog = consumer_app.window.show_page("catalog")
    qtbot.waitUntil(lambda: catalog.safe_refresh() or catalog.results.rowCount() == 1, timeout=20000)
    catalog.results.selectRow(0)
    catalog.request()
    cid = consumer.contracts.list()[0].id
    qtbot.waitUntil(lambda: consumer.contracts.get(cid).state == "FINALIZED", timeout=30000)

    transfers = consumer_app.window.show_page("transfers")
    transfers.safe_refresh()
    assert transfers.agreements.count() == 1
    seen = []
    consumer_app.window.bridge.transfer_progress.connect(lambda e: seen.append(e.chunks_done))
    transfers.start()
    qtbot.waitUntil(lambda: transfers.safe_refresh() or transfers.list.item(0, 3).text() == "done", timeout=60000)
    assert seen, "progress events reached the page"
    bar = transfers.list.cellWidget(0, 4)
    assert bar.value() == bar.maximum()
    assert transfers.received.rowCount() == 1
    qtbot.waitUntil(lambda: "A transfer finished: the data is in your node." in consumer_app.window.notifier.shown,
                    timeout=10000)

    products = provider_app.window.show_page("products")
    products.list.selectRow(0)
    products.delist()
    products.reason_dialog.textValueSelected.emit("数据停止更新")
    assert products.list.item(0, 4).text() == "测试空间 (delisted)"
    assert [x.status for x in provider.products.list()[0].listings] == ["delisted"]


def test_a_newcomer_joins_a_space_from_the_first_run_wizard(qtbot, space, tmp_path, english):
    from ui import dialogs

    code = space.operator.operator.invite(org="示例制造").code()
    app = DesktopApp(Settings(home=tmp_path / "newcomer", kdf_profile="minimum"))
    app.start()
    try:
        wizard = app.dialog
        wizard.identity.name.setText("新成员")
        wizard.next()
        wizard.secret.first.setText("newcomer passphrase 1")
        wizard.secret.second.setText("newcomer passphrase 1")
        wizard.secret.understood.setChecked(True)
        wizard.next()
        wizard.space.code.setPlainText("garbage")
        wizard.next()
        assert wizard.currentPage() is wizard.space and wizard.space.detail.text(), "a bad code is refused, in place"
        wizard.space.code.setPlainText(code)
        wizard.accept()  # Finish
        qtbot.waitUntil(lambda: app.window is not None, timeout=30000)
        qtbot.waitUntil(lambda: any(d.objectName() == "info_dialog" for d in dialogs.shown), timeout=30000)
        said = [d.text() for d in dialogs.shown if d.objectName() == "info_dialog"][0]
        assert "You are now a member of" in said
        dashboard = app.window.show_page("dashboard")
        dashboard.safe_refresh()
        assert dashboard.spaces.item(0, 1).text() == "member"
    finally:
        dialogs.close_all()
        app.stop()


def test_a_demand_published_in_the_app_is_matched_and_answered_with_an_offer(qtbot, space, english):
    provider, consumer = space.member("provider"), space.member("consumer")
    provider.membership.request_listing(SPACE, "ds-1", ENTRY)
    request = wait_for(lambda: space.operator.operator.listings("pending"))[0]
    space.operator.operator.approve_listing(request.id)
    provider_app, consumer_app = space.app_for(provider), space.app_for(consumer)

    wanted = consumer_app.window.show_page("demands")
    wanted.title_edit.setText("注塑温度曲线")
    wanted.keywords.setText("注塑，温度")
    wanted.purpose.setText("工艺优化")
    wanted.publish()
    assert wanted.open.rowCount() == 1 and wanted.open.item(0, 1).text() == "this node"

    offers = provider_app.window.show_page("demands")
    qtbot.waitUntil(lambda: offers.safe_refresh() or offers.matches.rowCount() == 1, timeout=20000)
    assert offers.matches.item(0, 2).text() == "注塑"
    offers.matches.selectRow(0)
    offers.answer()
    offers.answer_dialog.findChild(QDialogButtonBox).accepted.emit()
    assert not offers.answer_dialog.isVisible()
    qtbot.waitUntil(lambda: [n for n in consumer.contracts.list() if n.state == "OFFERED"] != [], timeout=20000)
