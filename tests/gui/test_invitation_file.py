"""The app opened with an invitation file (what the desktop entry's `%f` hands it when a user opens a
``*.dsinvite`` file): on the first run the wizard's last step holds the invitation and Finish joins;
on an existing node the window names the invitation's space and asks before it sends the join
request; a file that is no invitation says so and the app goes on as usual."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLabel, QLineEdit, QPlainTextEdit

from appliance.errors import InvitationInvalid
from appliance.services.membership.invitation import load_invitation
from tests.gui.conftest import PASSPHRASE
from tests.spaces import SPACE
from ui import dialogs
from ui.app import DesktopApp, parse_args
from ui.unlock import UnlockDialog
from ui.wizard import FirstRunWizard


@pytest.fixture
def invitation_file(space, tmp_path):
    path = tmp_path / "上海汽配.dsinvite"
    path.write_text(space.operator.operator.invite(org="示例公司").code() + "\n", encoding="utf-8")
    return path


@pytest.fixture
def opened(settings):
    """A DesktopApp started as `dsnode-desktop FILE` would start it; stopped after the test."""
    apps: list[DesktopApp] = []

    def start(path):
        args = parse_args(["--home", str(settings.home), str(path)])
        app = DesktopApp(settings, invitation_file=args.invitation)
        apps.append(app)
        app.start()
        return app

    yield start
    dialogs.close_all()
    for app in apps:
        if app.dialog is not None:
            app.dialog.close()
        app.stop()


def _texts(dialog: QDialog) -> tuple[list[str], list[str]]:
    """What a dialog says (its labels) and holds (its text fields)."""
    fields = [e.text() for e in dialog.findChildren(QLineEdit)] + [e.toPlainText().strip()
                                                                    for e in dialog.findChildren(QPlainTextEdit)]
    return [label.text() for label in dialog.findChildren(QLabel)], fields


def _admitted(app) -> bool:
    return any("You are now a member of test-space" in getattr(d, "text", lambda: "")() for d in dialogs.shown)


def test_on_an_existing_node_the_app_asks_to_join_the_space_of_the_invitation(qtbot, store, space, invitation_file,
                                                                             opened, english):
    app = opened(invitation_file)
    assert isinstance(app.dialog, UnlockDialog), "an existing node is unlocked first"
    app.dialog.passphrase.setText(PASSPHRASE)
    qtbot.mouseClick(app.dialog.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: app.window is not None, timeout=20000)
    (ask,) = [d for d in app.window.findChildren(QDialog) if d.isVisible()]  # the window asks before it joins
    labels, fields = _texts(ask)
    assert any("测试空间" in x and SPACE in x for x in labels), labels
    assert any(space.operator.identity.did in x for x in labels), "the operator who signed it is named, to check"
    assert invitation_file.read_text(encoding="utf-8").strip() in fields
    ask.accept()  # "Send the join request"
    qtbot.waitUntil(lambda: _admitted(app), timeout=30000)
    assert space.status(app.node) == "member"


def test_on_the_first_run_the_wizard_holds_the_invitation_and_finish_joins(qtbot, settings, space, invitation_file,
                                                                          opened, english):
    app = opened(invitation_file)
    wizard = app.dialog
    assert isinstance(wizard, FirstRunWizard)
    assert wizard.space.paste.isChecked()
    assert wizard.space.code.toPlainText() == invitation_file.read_text(encoding="utf-8").strip()
    wizard.next()
    wizard.secret.first.setText(PASSPHRASE)
    wizard.secret.second.setText(PASSPHRASE)
    wizard.secret.understood.setChecked(True)
    wizard.next()
    assert wizard.currentPage() is wizard.space
    wizard.accept()  # Finish: the store, then the join request of the invitation
    qtbot.waitUntil(lambda: _admitted(app), timeout=30000)
    asked = [d.objectName() for d in app.window.findChildren(QDialog) if d.isVisible()]
    assert asked == ["info_dialog"], "no second question, only the operator's answer"


def test_a_file_that_is_no_invitation_says_so_and_the_app_goes_on(qtbot, store, tmp_path, opened, english):
    path = tmp_path / "notes.dsinvite"
    path.write_text("not an invitation\n", encoding="utf-8")
    app = opened(path)
    assert isinstance(app.dialog, UnlockDialog) and app.dialog.isVisible()
    errors = [d for d in dialogs.shown if d.objectName() == "error_dialog"]
    with pytest.raises(InvitationInvalid) as refused:
        load_invitation(str(path))
    assert [e.text() for e in errors] == [refused.value.message("en")]
