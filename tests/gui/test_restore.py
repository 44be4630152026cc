"""The first run's other road: restore a node from a backup file (the store is not open yet), with
the backup's passphrase; a wrong passphrase is said in place. And the new node's recovery backup,
written once the node exists, restores."""

from __future__ import annotations

import shutil

import pytest

from appliance.errors import WrongPassphrase
from appliance.node import KDF_PROFILES, Node
from tests.gui.conftest import PASSPHRASE
from tests.gui.test_language import english_left
from ui import dialogs
from ui.wizard import RESTORE, FirstRunWizard


@pytest.fixture
def backup(settings, tmp_path):
    """A backup of a node (name, organisation, one resource) whose store is then gone; its did."""
    kdf = KDF_PROFILES["minimum"]()
    csv = tmp_path / "orders.csv"
    csv.write_text("order_id,qty\n1,5\n", encoding="utf-8")
    with Node.init(tmp_path / "old", PASSPHRASE.encode(), name="三号仓库", org="示例汽配", kdf=kdf) as node:
        node.resources.allowed_roots = [tmp_path]
        node.resources.register(csv)
        did = node.identity.did
        node.backup(tmp_path / "box.dsbackup")
    shutil.rmtree(tmp_path / "old")
    return tmp_path / "box.dsbackup", did


def _to_restore(qtbot, settings):
    wizard = FirstRunWizard(settings)
    qtbot.addWidget(wizard)
    created = []
    wizard.created.connect(lambda node, invitation: created.append((node, invitation)))
    wizard.show()
    wizard.identity.restore.setChecked(True)
    assert not wizard.identity.name.isEnabled(), "a restored node keeps its own name"
    wizard.next()
    assert wizard.currentId() == RESTORE
    return wizard, created


@pytest.mark.parametrize("lang, finish", [("en", "Restore my node"), ("zh_CN", "恢复我的节点")])
def test_the_wizard_restores_a_backup_and_opens_the_node(qtbot, settings, backup, lang, finish):
    from appliance import i18n

    i18n.set_lang(lang)
    try:
        wizard, created = _to_restore(qtbot, settings)
        assert wizard.buttonText(wizard.WizardButton.FinishButton) == finish
        if lang == "zh_CN":
            assert not english_left(wizard), english_left(wizard)
        assert not wizard.button(wizard.WizardButton.FinishButton).isEnabled(), "no file nor passphrase yet"
        wizard.restore.file.setText(str(backup[0]))
        wizard.restore.passphrase.setText(PASSPHRASE)
        wizard.accept()
        qtbot.waitUntil(lambda: bool(created), timeout=30000)
    finally:
        i18n.set_lang(None)
    node, invitation = created[0]
    try:
        assert invitation is None
        assert (node.identity.did, node.identity.name, node.identity.org) == (backup[1], "三号仓库", "示例汽配")
        assert len(node.resources.list()) == 1
        assert "store.restored" in [e.action for e in node.evidence.entries()]
    finally:
        node.close()
    Node.open(settings.home, PASSPHRASE.encode()).close()  # the restored store opens with the backup's passphrase


def test_a_wrong_passphrase_is_said_on_the_page_and_nothing_is_placed(qtbot, settings, backup, english):
    wizard, created = _to_restore(qtbot, settings)
    wizard.restore.file.setText(str(backup[0]))
    wizard.restore.passphrase.setText("not the passphrase")
    wizard.accept()
    qtbot.waitUntil(lambda: bool(wizard.restore.problem.text()), timeout=30000)
    assert wizard.restore.problem.text() == WrongPassphrase().message("en")
    assert not created and wizard.isVisible()
    assert wizard.button(wizard.WizardButton.FinishButton).isEnabled(), "try again"
    assert not Node.exists(settings.home)


def test_a_new_node_writes_its_recovery_backup_which_restores(qtbot, settings, tmp_path, english):
    wizard = FirstRunWizard(settings)
    qtbot.addWidget(wizard)
    created = []
    wizard.created.connect(lambda node, invitation: created.append(node))
    wizard.show()
    wizard.identity.name.setText("新节点")
    wizard.next()
    page = wizard.secret
    page.first.setText(PASSPHRASE)
    page.second.setText(PASSPHRASE)
    page.understood.setChecked(True)
    assert not page.recovery.isChecked() and page.recovery_path() is None
    page.recovery.setChecked(True)
    (tmp_path / "recovery.dsbackup").write_bytes(b"another node's backup")
    page.recovery_file.setText(str(tmp_path / "recovery.dsbackup"))
    wizard.next()
    assert wizard.currentPage() is page and "exists already" in page.problem.text(), "no backup is overwritten"
    page.recovery_file.setText(str(tmp_path / "recovery-2.dsbackup"))
    wizard.next()
    wizard.accept()
    qtbot.waitUntil(lambda: bool(created), timeout=30000)
    did = created[0].identity.did
    created[0].close()
    assert any("Backup written to" in d.text() for d in dialogs.shown if d.objectName() == "info_dialog")
    with Node.restore(tmp_path / "recovery-2.dsbackup", tmp_path / "again", PASSPHRASE.encode()) as again:
        assert again.identity.did == did
