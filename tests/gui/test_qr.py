"""Joining from a QR image: the PNG that `dsnode operator invite --qr` writes is read back (Qt reads
the picture, zxing-cpp the code) into the join dialog and the wizard's last step, and the join goes
through to admission; a picture without a code says so."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QPushButton

from appliance import i18n
from appliance.settings import Settings
from tests.gui.conftest import PASSPHRASE
from tests.spaces import SPACE
from ui import dialogs
from ui.app import DesktopApp
from ui.join_dialog import JoinDialog
from ui.wizard import FirstRunWizard


@pytest.fixture
def qr(space, tmp_path):
    """An invitation's QR image, as the operator's command writes it; and its code."""
    invitation = space.operator.operator.invite(org="示例公司")
    path = tmp_path / "invite.png"
    invitation.write_qr(path)
    return path, invitation.code()


def _admitted(app) -> bool:
    return any(SPACE in getattr(d, "text", lambda: "")() and d.objectName() == "info_dialog" for d in dialogs.shown)


@pytest.mark.parametrize("lang, says", [("en", "Space: 测试空间"), ("zh_CN", "数据空间：测试空间")])
def test_a_qr_image_fills_the_join_dialog_and_the_node_is_admitted(qtbot, space, qr, tmp_path, lang, says):
    i18n.set_lang(lang)
    node = space.new_node("late")
    app = DesktopApp(Settings(home=node.home, kdf_profile="minimum"))
    try:
        app.run(node)
        dashboard = app.window.show_page("dashboard")
        dashboard.findChild(QPushButton, "join").click()  # "Join a space…"
        dialog = next(d for d in dialogs.shown if d.objectName() == "join_space_dialog")
        assert isinstance(dialog, JoinDialog) and not dialog.send_b.isEnabled(), "nothing to send yet"
        dialog.input.load_qr(str(qr[0]))
        qtbot.waitUntil(lambda: dialog.input.text() == qr[1], timeout=10000)
        assert says in dialog.input.detail.text(), "the space is named before anything is sent"
        assert space.operator.identity.did in dialog.input.detail.text(), "and the operator who signed it"
        assert dialog.send_b.isEnabled()
        dialog.accept()
        qtbot.waitUntil(lambda: _admitted(app), timeout=30000)
        assert space.status(node) == "member"
    finally:
        dialogs.close_all()
        app.stop()
        i18n.set_lang(None)


def test_a_picture_without_a_code_says_so(qtbot, tmp_path, english):
    blank = QImage(200, 200, QImage.Format.Format_RGB32)
    blank.fill(QColor("white"))
    picture = tmp_path / "holiday.png"
    blank.save(str(picture))
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("hello", encoding="utf-8")
    sent = []
    dialog = JoinDialog(None, sent.append)
    qtbot.addWidget(dialog)
    dialog.input.load_qr(str(picture))
    qtbot.waitUntil(lambda: "no QR code was found" in dialog.input.detail.text(), timeout=10000)
    assert dialog.input.qr_b.isEnabled() and not dialog.send_b.isEnabled()
    dialog.input.load_qr(str(not_a_picture))
    qtbot.waitUntil(lambda: "is not a picture" in dialog.input.detail.text(), timeout=10000)
    dialog.accept()
    assert not sent, "nothing is sent without an invitation"


def test_the_wizard_reads_the_qr_image_and_finish_joins(qtbot, settings, space, qr, english):
    app = DesktopApp(settings)
    try:
        app.start()
        wizard = app.dialog
        assert isinstance(wizard, FirstRunWizard)
        wizard.next()
        wizard.secret.first.setText(PASSPHRASE)
        wizard.secret.second.setText(PASSPHRASE)
        wizard.secret.understood.setChecked(True)
        wizard.next()
        assert wizard.currentPage() is wizard.space
        wizard.space.input.load_qr(str(qr[0]))
        qtbot.waitUntil(lambda: wizard.space.code.toPlainText() == qr[1], timeout=10000)
        assert wizard.space.paste.isChecked()
        assert "Space: 测试空间" in wizard.space.detail.text()
        wizard.accept()
        qtbot.waitUntil(lambda: _admitted(app), timeout=30000)
    finally:
        dialogs.close_all()
        app.stop()


def test_a_qr_picture_on_the_clipboard_or_dropped_on_the_dialog_is_read(qtbot, qr, tmp_path, english):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent
    from PySide6.QtWidgets import QApplication

    dialog = JoinDialog(None, lambda code: None)
    qtbot.addWidget(dialog)
    QApplication.clipboard().setText("no picture here")
    dialog.input.paste_qr()
    assert "holds no picture" in dialog.input.detail.text()
    QApplication.clipboard().setImage(QImage(str(qr[0])))
    dialog.input.paste_qr()
    qtbot.waitUntil(lambda: dialog.input.text() == qr[1], timeout=10000)
    assert dialog.send_b.isEnabled()

    invitation_file = tmp_path / "invite.txt"
    invitation_file.write_text(qr[1] + "\n", encoding="utf-8")
    for dropped in (qr[0], invitation_file):  # the picture, then the invitation file
        dialog.input.code.clear()
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(dropped))])
        drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier)
        dialog.input.dropEvent(drop)
        qtbot.waitUntil(lambda: dialog.input.text() == qr[1], timeout=10000)
