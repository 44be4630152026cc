"""Every page and dialog in zh_CN shows no English left over (names and data aside); in en, no raw keys."""

from __future__ import annotations

import re

from PySide6.QtWidgets import (QAbstractButton, QComboBox, QGroupBox, QLabel, QLineEdit, QListWidget, QPlainTextEdit,
                               QSpinBox, QTableWidget, QTabWidget, QWidget)

from appliance import i18n
from tests.unit.test_error_language import ALLOWED, WORDS
from ui.unlock import UnlockDialog
from ui.wizard import FirstRunWizard


def texts(root: QWidget) -> list[str]:
    """The words a user reads on ``root``: labels, buttons, headers, hints, items (not table cells)."""
    found = [root.windowTitle()]
    for w in [root, *root.findChildren(QWidget)]:
        found.append(w.toolTip())
        if isinstance(w, QLabel):
            found.append(w.text())
        elif isinstance(w, QAbstractButton):
            found.append(w.text())
        elif isinstance(w, QGroupBox):
            found.append(w.title())
        elif isinstance(w, QLineEdit | QPlainTextEdit):
            found.append(w.placeholderText())
        elif isinstance(w, QComboBox):
            found.extend(w.itemText(i) for i in range(w.count()))
        elif isinstance(w, QSpinBox):
            found.extend([w.suffix(), w.specialValueText()])
        elif isinstance(w, QListWidget):
            found.extend(w.item(i).text() for i in range(w.count()))
        if isinstance(w, QTabWidget):
            found.extend(w.tabText(i) for i in range(w.count()))
        if isinstance(w, QTableWidget):
            found.extend(w.horizontalHeaderItem(i).text() for i in range(w.columnCount())
                         if w.horizontalHeaderItem(i) is not None)
    return [x for x in found if x]


PATHS = re.compile(r"(?:/[^\s/（）()，。；]+)+/?")  # file and folder paths are data


def english_left(root: QWidget) -> list[str]:
    return [x for x in texts(root) if WORDS.search(ALLOWED.sub(" ", PATHS.sub(" ", x)))]


def _populate(desktop, tmp_path):
    csv = tmp_path / "orders.csv"
    csv.write_text("order_id,customer,phone\n1,张三,13800138000\n2,李四,13900139000\n", encoding="utf-8")
    rid = desktop.node.resources.register(csv).resource.id
    desktop.node.resources.set_column_rule(rid, {"column": "phone", "rule": "mask"})


def _walk(qtbot, desktop):
    window = desktop.window
    seen = {}
    for i, page in enumerate(window.pages):
        window.sidebar.setCurrentRow(i)
        qtbot.waitUntil(page.isVisible)
        if page.key == "resources":
            page.list.selectRow(0)
            for tab in range(page.detail.count()):
                page.detail.setCurrentIndex(tab)
        seen[page.key] = page
    return window, seen


def test_every_page_in_chinese_has_no_english_left(qtbot, zh, desktop, tmp_path):
    _populate(desktop, tmp_path)
    window, seen = _walk(qtbot, desktop)
    assert {"dashboard", "resources", "products", "catalog", "contracts", "transfers", "evidence",
            "settings"} <= set(seen)
    problems = {key: english_left(page) for key, page in seen.items()}
    problems["window"] = english_left(window)
    window.lock()
    problems["lock"] = english_left(window)
    assert not any(problems.values()), problems


def test_the_first_run_and_unlock_dialogs_in_chinese_have_no_english_left(qtbot, zh, settings, store):
    wizard = FirstRunWizard(settings)
    qtbot.addWidget(wizard)
    wizard.show()
    problems = []
    for _ in range(3):
        problems += english_left(wizard)
        wizard.secret.first.setText("x" * 20)
        wizard.secret.second.setText("x" * 20)
        wizard.secret.understood.setChecked(True)
        wizard.next()
    dialog = UnlockDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    problems += english_left(dialog)
    assert not problems, problems


def test_in_english_no_page_shows_a_raw_message_key(qtbot, english, desktop, tmp_path):
    _populate(desktop, tmp_path)
    window, seen = _walk(qtbot, desktop)
    raw = [x for page in seen.values() for x in texts(page) if x.startswith("ui.") or " ui." in x]
    assert not raw, raw
    assert i18n.get_lang() == "en"
    assert window.sidebar.item(0).text() == "Dashboard"


def test_switching_the_language_in_settings_rebuilds_the_window(qtbot, english, desktop):
    window = desktop.window
    page = window.show_page("settings")
    page.lang.setCurrentIndex(page.lang.findData("zh_CN"))
    page.save()
    try:
        assert window.sidebar.item(0).text() == "概览"
        assert window.sidebar.currentRow() == len(window.pages) - 1, "the settings page stays in view"
    finally:
        i18n.set_lang("en")


def test_the_operator_page_in_chinese_has_no_english_left(qtbot, zh, tmp_path):
    from appliance.settings import Settings
    from tests.spaces import SpaceHarness
    from ui.app import DesktopApp

    space = SpaceHarness(tmp_path / "space", embedded=True, auto_admit=False)
    app = DesktopApp(Settings(home=space.operator.home, kdf_profile="minimum"))
    try:
        space.join(space.new_node("late"), wait=False)
        app.run(space.operator)
        page = app.window.show_page("operator")
        qtbot.waitUntil(lambda: page.safe_refresh() or page.admissions.rowCount() == 1, timeout=20000)
        assert not english_left(page), english_left(page)
    finally:
        app.stop()
        space.close()
