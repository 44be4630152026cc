"""The keyboard: the page list is driven with the arrow keys, and Tab walks each page's controls in
reading order and comes back to the page list (no control keeps the focus, no stop is invisible)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

STEPS = 60  # more than any page has controls
MAIN = {  # a page's main controls, in the order Tab reaches them
    "resources": ["register", "search", "resources"],
    "products": ["space", "list_in", "delist", "title", "find_resources", "resources", "template", "create"],
    "catalog": ["space", "query", "search_button", "offer", "request"],
    "demands": ["space", "demand_title", "publish"],
    "transfers": ["agreements"],
    "evidence": ["search", "newest", "verify", "export", "log"],
}


@pytest.fixture
def window(qtbot, desktop, tmp_path):
    csv = tmp_path / "orders.csv"
    csv.write_text("order_id,customer\n1,张三\n2,李四\n", encoding="utf-8")
    desktop.node.resources.register(csv)
    w = desktop.window
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    return w


def _cycle(window, key: Qt.Key = Qt.Key.Key_Tab) -> list[str]:
    """Press ``key`` from the page list until the focus is back there; the object names on the way."""
    window.sidebar.setFocus()
    stops = []
    for _ in range(STEPS):
        QTest.keyClick(QApplication.focusWidget(), key)
        focused = QApplication.focusWidget()
        if focused is window.sidebar:
            return stops
        assert focused is not None and focused.isVisible(), f"the focus went to a hidden control: {focused}"
        stops.append(focused.objectName())
    raise AssertionError(f"the focus never came back to the page list: {stops[-10:]}")


def test_the_page_list_is_driven_by_the_keyboard(qtbot, window):
    window.sidebar.setFocus()
    QTest.keyClick(window.sidebar, Qt.Key.Key_Down)
    assert window.pages[window.pages_stack.currentIndex()].key == "resources"
    assert window.page("resources").isVisible()
    QTest.keyClick(window.sidebar, Qt.Key.Key_End)
    assert window.pages_stack.currentIndex() == len(window.pages) - 1
    QTest.keyClick(window.sidebar, Qt.Key.Key_Home)
    assert window.pages_stack.currentIndex() == 0 and window.page("dashboard").isVisible()


def test_tab_walks_every_page_and_comes_back_to_the_page_list(qtbot, window):
    for i, page in enumerate(window.pages):
        window.sidebar.setCurrentRow(i)
        forward = _cycle(window)
        backward = _cycle(window, Qt.Key.Key_Backtab)
        assert sorted(forward) == sorted(backward), f"{page.key}: Shift+Tab stops at other controls"
        main = MAIN.get(page.key, [])
        reached = [name for name in forward if name in main]
        assert reached == main, f"{page.key}: Tab reaches {forward}"


def test_the_resource_list_is_walked_with_the_arrow_keys_and_its_detail_follows(qtbot, window):
    page = window.show_page("resources")
    window.sidebar.setFocus()
    QTest.keyClick(window.sidebar, Qt.Key.Key_Tab)  # the register button
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)  # the search field
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)  # the list
    assert QApplication.focusWidget() is page.list
    QTest.keyClick(page.list, Qt.Key.Key_Down)
    assert page.current() is not None and page.detail.isVisible()
    stops = _cycle(window)
    assert stops.index("qt_tabwidget_tabbar") > stops.index("resources"), "then the detail's tabs"
