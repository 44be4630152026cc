"""Errors as dialogs: a core error says its own message; a bug gets a plain apology and a report.

A user never sees a traceback. The report (copyable) names the exception and where it happened,
and the same goes to the log.
"""

from __future__ import annotations

import logging
import platform
import traceback

from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QLabel, QMessageBox, QPlainTextEdit,
                               QVBoxLayout, QWidget)

from appliance import __version__
from appliance.errors import ApplianceError
from appliance.i18n import t

log = logging.getLogger(__name__)

shown: list[QWidget] = []  # the dialogs open now (tests look at them)


def _keep(dialog: QWidget) -> None:
    shown.append(dialog)
    dialog.finished.connect(lambda *_: shown.remove(dialog) if dialog in shown else None)


def show_error(parent: QWidget | None, error: BaseException) -> QWidget:
    """Show ``error``: its message when it is one of the core's, an apology when it is a bug."""
    if isinstance(error, ApplianceError):
        box = QMessageBox(QMessageBox.Icon.Warning, t("ui.error.title"), error.message(), QMessageBox.StandardButton.Ok,
                          parent)
        box.setObjectName("error_dialog")
        _keep(box)
        box.open()
        return box
    return show_bug(parent, error)


def bug_report(error: BaseException) -> str:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return (f"dsnode {__version__} / Python {platform.python_version()} / {platform.platform()}\n"
            + "".join(lines))


def show_bug(parent: QWidget | None, error: BaseException) -> QWidget:
    log.error("unexpected error in the desktop app", exc_info=error)
    dialog = QDialog(parent)
    dialog.setObjectName("bug_dialog")
    dialog.setWindowTitle(t("ui.bug.title"))
    layout = QVBoxLayout(dialog)
    label = QLabel(t("ui.bug.apology"))
    label.setWordWrap(True)
    layout.addWidget(label)
    report = QPlainTextEdit(bug_report(error))
    report.setReadOnly(True)
    report.setObjectName("bug_report")
    layout.addWidget(report)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    copy = buttons.addButton(t("ui.bug.copy"), QDialogButtonBox.ButtonRole.ActionRole)
    copy.clicked.connect(lambda: QApplication.clipboard().setText(report.toPlainText()))
    buttons.rejected.connect(dialog.reject)
    buttons.button(QDialogButtonBox.StandardButton.Close).setText(t("ui.close"))
    layout.addWidget(buttons)
    dialog.resize(640, 360)
    _keep(dialog)
    dialog.open()
    return dialog


def info(parent: QWidget | None, text: str) -> QWidget:
    box = QMessageBox(QMessageBox.Icon.Information, t("ui.app.title"), text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("info_dialog")
    _keep(box)
    box.open()
    return box


def close_all() -> None:
    for dialog in list(shown):
        dialog.done(0)
