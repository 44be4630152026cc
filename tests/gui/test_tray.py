"""The system tray: closing the window leaves the node running there when the user chose so, and the
notices the app gives for core events (approvals, finished transfers, agreements about to end, the
operator's queues and alerts). Offscreen there is no tray: the tests attach the app's own icon, as a
desktop with a tray does at start."""

from __future__ import annotations

from datetime import timedelta

import pytest

from appliance.domain.contracts import NegotiationChanged
from appliance.host import ControlClient
from appliance.host.host import RequestsWaiting
from appliance.operator.witness import AlertRaised
from appliance.services.delivery.records import TransferChanged
from appliance.settings import Settings
from tests.spaces import SPACE, SpaceHarness, finalized, list_entry
from ui import dialogs
from ui.app import DesktopApp
from ui.notify import expiring


def _close_to_tray(desktop, keep: bool) -> None:
    window = desktop.window
    window.ctx.prefs = window.ctx.prefs.with_(keep_in_tray=keep)


def test_closing_the_window_keeps_the_node_running_in_the_tray_when_chosen(qtbot, desktop, english):
    window = desktop.window
    tray = window.notifier.attach_tray()
    _close_to_tray(desktop, True)
    assert not window.close(), "the close is refused: the window only hides"
    assert not window.isVisible() and not window.ctx.closed
    assert desktop.host.state == "running"
    assert ControlClient(desktop.node.home).running(), "dsnode commands still reach the node"
    assert window.notifier.tray_said[-1] == "dsnode keeps running here. Choose Quit in this menu to stop the node."
    show, quit_ = tray.contextMenu().actions()
    show.trigger()
    assert window.isVisible()
    quit_.trigger()
    assert window.ctx.closed and not window.isVisible(), "Quit in the tray's menu stops the app"


def test_closing_the_window_quits_when_the_user_did_not_choose_the_tray(qtbot, desktop, english):
    window = desktop.window
    window.notifier.attach_tray()
    _close_to_tray(desktop, False)
    window.close()
    assert window.ctx.closed


def test_without_a_tray_closing_the_window_quits_even_when_the_tray_was_chosen(qtbot, desktop, english):
    window = desktop.window
    assert window.notifier.tray is None  # offscreen: no system tray
    _close_to_tray(desktop, True)
    window.close()
    assert window.ctx.closed, "nothing would bring a hidden window back"


@pytest.mark.parametrize("event, text", [
    (NegotiationChanged("n-1", "REQUESTED", True), "A contract request waits for your approval."),
    (TransferChanged("t-1", "consumer", "COMPLETED", None), "A transfer finished: the data is in your node."),
    (TransferChanged("t-2", "provider", "COMPLETED", None), "A transfer to a consumer finished."),
    (RequestsWaiting(SPACE, 2, 1), "Waiting for your decision: 2 join request(s), 1 listing request(s)."),
    (AlertRaised("did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "rewritten", "two logs"),
     "Alert: the evidence log of member z6MkrJVnaZke… was rewritten. `dsnode operator alerts` lists every alert."),
])
def test_a_core_event_brings_its_notice_to_the_tray_while_the_window_is_hidden(qtbot, desktop, english, event, text):
    window = desktop.window
    window.notifier.attach_tray()
    _close_to_tray(desktop, True)
    window.close()
    desktop.node.bus.emit(event)  # as the core emits it, from whichever thread
    qtbot.waitUntil(lambda: text in window.notifier.tray_said, timeout=5000)


def test_events_that_need_nobody_bring_no_notice(qtbot, desktop, english):
    window = desktop.window
    for event in (NegotiationChanged("n-1", "AGREED", False), TransferChanged("t-1", "consumer", "STARTED", None)):
        desktop.node.bus.emit(event)
    qtbot.wait(300)
    assert window.notifier.shown == []


TWO_DAYS = {"@id": "urn:offer:short", "@type": "odrl:Offer", "permission": [{"action": "use", "constraint": [
    {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": {"@value": "P2D", "@type": "xsd:duration"}}]}]}


@pytest.fixture
def short_agreement(tmp_path):
    """A consumer app with an agreement in force that ends in two days."""
    space = SpaceHarness(tmp_path / "space", embedded=True)
    provider, consumer = space.member("provider"), space.member("consumer")
    list_entry(space, provider, {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据",
                                 "odrl:hasPolicy": [TWO_DAYS]}, consumer)
    provider.contracts.add_rule({"dataset": "ds-1"})
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:short")
    finalized(provider, consumer, cid)
    app = DesktopApp(Settings(home=consumer.home, kdf_profile="minimum"))
    app.run(consumer)
    yield app
    dialogs.close_all()
    app.stop()
    space.close()


def test_an_agreement_that_ends_soon_is_announced_once(qtbot, short_agreement, english):
    window, node = short_agreement.window, short_agreement.node
    now = node.clock.now()
    soon = expiring(node, now)
    assert len(soon) == 1
    assert expiring(node, now, timedelta(days=1)) == [], "two days away is not within one day"
    assert expiring(node, now + timedelta(days=3)) == [], "an agreement that has ended is not 'ending soon'"
    window.notifier.check_agreements()
    window.notifier.check_agreements()
    end = soon[0][1][:16].replace("T", " ")
    assert window.notifier.shown == [f"The agreement for 注塑机温度数据 ends on {end}."]
