"""First run and unlock: the wizard creates the store; a wrong passphrase is refused plainly."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from appliance.errors import PassphraseMismatch, WrongPassphrase
from appliance.node import Node
from tests.gui.conftest import PASSPHRASE
from ui.unlock import UnlockDialog
from ui.wizard import FirstRunWizard


def _fill_passphrase(wizard, first, second):
    page = wizard.secret
    page.first.setText(first)
    page.second.setText(second)
    page.understood.setChecked(True)
    return page


def test_the_wizard_creates_the_store_with_the_name_and_organisation(qtbot, settings):
    wizard = FirstRunWizard(settings)
    qtbot.addWidget(wizard)
    created = []
    wizard.created.connect(lambda node, invitation: created.append((node, invitation)))
    wizard.show()
    wizard.identity.name.setText("仓库一号")
    wizard.identity.org.setText("示例汽配")
    wizard.next()
    assert wizard.currentPage() is wizard.secret
    assert not wizard.button(wizard.WizardButton.NextButton).isEnabled(), "no passphrase yet"
    _fill_passphrase(wizard, PASSPHRASE, PASSPHRASE)
    wizard.next()
    assert wizard.currentPage() is wizard.space
    assert wizard.space.skip.isChecked()
    wizard.accept()  # Finish
    qtbot.waitUntil(lambda: bool(created), timeout=30000)
    node, invitation = created[0]
    try:
        assert invitation is None
        assert Node.exists(settings.home)
        assert (node.identity.name, node.identity.org) == ("仓库一号", "示例汽配")
    finally:
        node.close()


def test_the_wizard_says_when_the_two_passphrases_differ(qtbot, settings, english):
    wizard = FirstRunWizard(settings)
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.next()
    page = _fill_passphrase(wizard, PASSPHRASE, PASSPHRASE + "x")
    wizard.next()
    assert wizard.currentPage() is page, "the wizard stays on the passphrase page"
    assert page.problem.text() == PassphraseMismatch().message("en")
    page.first.setText("short")
    assert page.strength.text() == "Too short"
    warning = [w.text() for w in page.findChildren(QLabel) if "cannot" in w.text() or "nobody" in w.text()]
    assert warning, "the page warns that a lost passphrase cannot be recovered"


def test_unlock_refuses_a_wrong_passphrase_and_opens_with_the_right_one(qtbot, store, english):
    dialog = UnlockDialog(store)
    qtbot.addWidget(dialog)
    opened = []
    dialog.opened.connect(opened.append)
    dialog.show()
    qtbot.keyClicks(dialog.passphrase, "not the passphrase")
    qtbot.mouseClick(dialog.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.problem.text() == WrongPassphrase().message("en"), timeout=20000)
    assert not opened and dialog.isVisible()
    dialog.passphrase.setText(PASSPHRASE)
    qtbot.mouseClick(dialog.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(opened), timeout=20000)
    opened[0].close()
