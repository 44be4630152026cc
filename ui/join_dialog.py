"""Joining a space: paste an invitation code, open an invitation file or read its QR image (a file,
the clipboard, or dropped on the dialog). The dialog names the space, its operator and broker
before anything is sent (as `dsnode space join` does); sending is the window's join flow
(:meth:`ui.window.MainWindow.join`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtGui import QImage
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QLabel,
                               QPlainTextEdit, QPushButton, QVBoxLayout, QWidget)

from appliance.errors import ApplianceError, InvitationInvalid, LocalText
from appliance.i18n import t
from appliance.services.membership.invitation import MAX_FILE, Invitation, load_invitation
from ui.qr import IMAGE_SUFFIXES, image_filter, read_qr_image, read_qr_text
from ui.tasks import run_task

ERROR_STYLE = "color: #c0392b"


def summary(invitation: Invitation) -> str:
    """What a person checks before joining: the space, who runs it, where its broker is."""
    tls = t("ui.join.tls") if invitation.tls_ca_pem else t("ui.join.no_tls")
    return t("ui.join.summary", invitation.space_name, invitation.space_id, invitation.operator_did,
             f"{invitation.broker_host}:{invitation.broker_port}", tls)


def read_file(path: str) -> str:
    """An invitation file's text (the code or the JSON document); InvitationInvalid when unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_FILE + 1).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise InvitationInvalid(LocalText("ui.join.reason.unreadable", path)) from None


class InvitationInput(QWidget):
    """A code box with "open file" and "read QR image" buttons, and a line that says what it holds."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        self.code = QPlainTextEdit()
        self.code.setObjectName("code")
        self.code.setPlaceholderText(t("ui.wizard.space.code_hint"))
        self.code.setMaximumHeight(90)
        v.addWidget(self.code)
        row = QHBoxLayout()
        self.file_b = QPushButton(t("ui.wizard.space.file"))
        self.file_b.setObjectName("open_file")
        self.file_b.clicked.connect(self.choose_file)
        self.qr_b = QPushButton(t("ui.join.qr"))
        self.qr_b.setObjectName("read_qr")
        self.qr_b.clicked.connect(self.choose_qr)
        self.paste_b = QPushButton(t("ui.join.qr_paste"))
        self.paste_b.setObjectName("paste_qr")
        self.paste_b.clicked.connect(self.paste_qr)
        row.addWidget(self.file_b)
        row.addWidget(self.qr_b)
        row.addWidget(self.paste_b)
        row.addStretch(1)
        v.addLayout(row)
        self.detail = QLabel()
        self.detail.setObjectName("detail")
        self.detail.setWordWrap(True)
        v.addWidget(self.detail)
        self.code.textChanged.connect(self.check)
        self.code.setAcceptDrops(False)  # a file or picture dropped anywhere here is read (dropEvent)
        self.setAcceptDrops(True)
        self.invitation: Invitation | None = None
        self.on_change: Callable[[], None] = lambda: None

    def text(self) -> str:
        return self.code.toPlainText().strip()

    def check(self) -> Invitation | None:
        """Verify what the box holds; say what it is (or what is wrong with it)."""
        self.invitation = None
        text = self.text()
        if not text:
            self.detail.setText("")
        else:
            try:
                self.invitation = load_invitation(text)
            except ApplianceError as e:
                self.say_problem(e)
            else:
                self.detail.setStyleSheet("")
                self.detail.setText(summary(self.invitation))
        self.on_change()
        return self.invitation

    def say_problem(self, error: ApplianceError) -> None:
        self.detail.setStyleSheet(ERROR_STYLE)
        self.detail.setText(error.message())

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, t("ui.wizard.space.file"))
        if path:
            self.load_file(path)

    def load_file(self, path: str) -> None:
        try:
            self.code.setPlainText(read_file(path))
        except ApplianceError as e:
            self.say_problem(e)

    def choose_qr(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, t("ui.join.qr"), str(Path.home()), image_filter())
        if path:
            self.load_qr(path)

    def load_qr(self, path: str) -> None:
        """Decode the picture in a worker (a large photo takes a moment); its text fills the box."""
        self._decode(lambda: read_qr_text(path))

    def paste_qr(self) -> None:
        """A QR picture copied to the clipboard (a screenshot, an image from a chat)."""
        image = QApplication.clipboard().image()
        if image.isNull():
            self.say_problem(InvitationInvalid(LocalText("ui.join.reason.no_picture")))
            return
        self._decode(lambda: read_qr_image(image, t("ui.join.clipboard")))

    def _decode(self, read: Callable[[], str]) -> None:
        for b in (self.qr_b, self.paste_b):
            b.setEnabled(False)
        self.detail.setStyleSheet("")
        self.detail.setText(t("ui.join.qr_reading"))
        run_task(lambda _p: read(), self._qr_read, self._qr_failed)

    def _qr_read(self, text: str) -> None:
        for b in (self.qr_b, self.paste_b):
            b.setEnabled(True)
        self.code.setPlainText(text)

    def _qr_failed(self, error: BaseException) -> None:
        for b in (self.qr_b, self.paste_b):
            b.setEnabled(True)
        if not isinstance(error, ApplianceError):
            raise error
        self.say_problem(error)

    # --- a file or picture dropped on the dialog --------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        mime = event.mimeData()
        if mime.hasImage() or any(u.isLocalFile() for u in mime.urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        mime = event.mimeData()
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if files:
            path = files[0]
            if Path(path).suffix.lower() in IMAGE_SUFFIXES:
                self.load_qr(path)
            else:
                self.load_file(path)
        elif mime.hasImage():
            image = QImage(mime.imageData())
            self._decode(lambda: read_qr_image(image, t("ui.join.dropped")))
        event.acceptProposedAction()


class JoinDialog(QDialog):
    """Asks for an invitation; ``send(code)`` once the person has checked the space and confirms."""

    def __init__(self, parent: QWidget | None, send: Callable[[str], None]) -> None:
        super().__init__(parent)
        self.setObjectName("join_space_dialog")
        self.setWindowTitle(t("ui.dash.join"))
        v = QVBoxLayout(self)
        intro = QLabel(t("ui.join.intro"))
        intro.setWordWrap(True)
        v.addWidget(intro)
        self.input = InvitationInput()
        v.addWidget(self.input)
        buttons = QDialogButtonBox()
        self.send_b = buttons.addButton(t("ui.join.send"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.send_b.setObjectName("send_join")
        buttons.addButton(t("ui.cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        v.addWidget(buttons)
        self.send = send
        self.input.on_change = lambda: self.send_b.setEnabled(self.input.invitation is not None)
        self.input.on_change()
        self.resize(560, 320)

    def accept(self) -> None:
        if self.input.invitation is None:
            return
        code = self.input.text()
        super().accept()
        self.send(code)


def ask_join(window) -> JoinDialog:
    """Open the join dialog over ``window``; the window's join flow sends the request."""
    from ui.dialogs import _keep

    dialog = JoinDialog(window, window.join)
    _keep(dialog)
    dialog.open()
    return dialog
