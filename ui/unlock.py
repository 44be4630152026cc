"""Unlock: the store passphrase opens the node (in a worker: the key derivation is slow on purpose)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from appliance.errors import ApplianceError
from appliance.i18n import t
from ui.dialogs import show_bug
from ui.tasks import run_task

if TYPE_CHECKING:
    from appliance.node import Node


def open_node(home, secret: bytes, preload=None) -> Node:
    """Open the store (the key derivation), then the node over it: :meth:`Node.open` in two steps, so
    that the key is derived while ``preload`` (:class:`ui.app.Preload`) still imports the core."""
    if preload is not None:
        preload.wait_store()
    from appliance.storage import Store

    store = Store.open(Path(home), secret)
    try:
        if preload is not None:
            preload.join()
        from appliance.node import Node

        return Node(home, store)
    except BaseException:
        store.close()
        raise


class UnlockDialog(QDialog):
    """Asks for the passphrase; ``opened(node)`` once the store opened. A refusal says why, in place."""

    opened = Signal(object)

    def __init__(self, home, parent: QWidget | None = None, preload=None) -> None:
        super().__init__(parent)
        self.home = home
        self.preload = preload  # the thread importing the core meanwhile, if any
        self.setObjectName("unlock")
        self.setWindowTitle(t("ui.unlock.title"))
        layout = QVBoxLayout(self)
        intro = QLabel(t("ui.unlock.intro", str(home)))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.passphrase = QLineEdit()
        self.passphrase.setObjectName("passphrase")
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        layout.addWidget(self.passphrase)
        self.problem = QLabel()
        self.problem.setObjectName("problem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0392b")
        layout.addWidget(self.problem)
        self.buttons = QDialogButtonBox()
        self.unlock_button = self.buttons.addButton(t("ui.unlock.button"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.unlock_button.setObjectName("unlock_button")
        quit_button = self.buttons.addButton(t("ui.quit"), QDialogButtonBox.ButtonRole.RejectRole)
        quit_button.setAutoDefault(False)
        self.unlock_button.setDefault(True)
        self.buttons.accepted.connect(self.try_unlock)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.resize(460, 180)
        self.node: Node | None = None

    def try_unlock(self) -> None:
        secret = self.passphrase.text().encode("utf-8")
        if not secret:
            self.problem.setText(t("ui.unlock.empty"))
            return
        self.unlock_button.setEnabled(False)
        self.problem.setText(t("ui.unlock.opening"))
        home, preload = self.home, self.preload
        run_task(lambda _progress: open_node(home, secret, preload), self._opened, self._failed)

    def _opened(self, node) -> None:
        self.node = node
        self.problem.setText("")
        self.opened.emit(node)
        self.accept()

    def _failed(self, error) -> None:
        self.unlock_button.setEnabled(True)
        if isinstance(error, ApplianceError):
            self.problem.setText(error.message())  # WrongPassphrase: "The passphrase is wrong …"
            self.passphrase.selectAll()
            self.passphrase.setFocus()
        else:
            self.problem.setText("")
            show_bug(self, error)
