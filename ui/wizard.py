"""The first run: who this node is, the store passphrase, and a space to join (or not yet).

The checks and the store creation are the core's (:mod:`appliance.host.flows`, ``Node.init``);
the wizard asks and shows. Creating the store derives the key (slow on purpose): a worker does it.
"""

from __future__ import annotations

import socket
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QProgressBar, QPushButton, QRadioButton, QVBoxLayout, QWidget,
                               QWizard, QWizardPage)

from appliance.errors import ApplianceError
from appliance.host.flows import MIN_PASSPHRASE, check_new_passphrase, passphrase_strength
from appliance.i18n import t
from appliance.node import KDF_PROFILES, Node
from appliance.services.membership.invitation import load_invitation
from ui.dialogs import show_error
from ui.tasks import run_task

STRENGTH_COLOURS = ("#c0392b", "#d35400", "#b7950b", "#27ae60", "#1e8449")


def translate_buttons(wizard: QWizard) -> None:
    for button, key in ((QWizard.WizardButton.NextButton, "ui.wizard.next"),
                        (QWizard.WizardButton.BackButton, "ui.wizard.back"),
                        (QWizard.WizardButton.FinishButton, "ui.wizard.finish"),
                        (QWizard.WizardButton.CancelButton, "ui.cancel")):
        wizard.setButtonText(button, t(key))


class IdentityPage(QWizardPage):
    def __init__(self, default_name: str) -> None:
        super().__init__()
        self.setTitle(t("ui.wizard.identity.title"))
        self.setSubTitle(t("ui.wizard.identity.intro"))
        form = QFormLayout(self)
        self.name = QLineEdit(default_name)
        self.name.setObjectName("name")
        self.org = QLineEdit()
        self.org.setObjectName("org")
        self.org.setPlaceholderText(t("ui.wizard.identity.org_hint"))
        form.addRow(t("ui.wizard.identity.name"), self.name)
        form.addRow(t("ui.wizard.identity.org"), self.org)
        self.name.textChanged.connect(self.completeChanged)

    def isComplete(self) -> bool:
        return bool(self.name.text().strip())


class PassphrasePage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle(t("ui.wizard.passphrase.title"))
        self.setSubTitle(t("ui.wizard.passphrase.intro", MIN_PASSPHRASE))
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.first = QLineEdit()
        self.first.setObjectName("passphrase")
        self.first.setEchoMode(QLineEdit.EchoMode.Password)
        self.second = QLineEdit()
        self.second.setObjectName("passphrase_again")
        self.second.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow(t("ui.wizard.passphrase.first"), self.first)
        form.addRow(t("ui.wizard.passphrase.second"), self.second)
        layout.addLayout(form)
        self.meter = QProgressBar()
        self.meter.setRange(0, 4)
        self.meter.setTextVisible(False)
        self.meter.setMaximumHeight(8)
        self.strength = QLabel()
        self.strength.setObjectName("strength")
        layout.addWidget(self.meter)
        layout.addWidget(self.strength)
        self.problem = QLabel()
        self.problem.setObjectName("problem")
        self.problem.setStyleSheet("color: #c0392b")
        layout.addWidget(self.problem)
        warning = QLabel(t("ui.wizard.passphrase.warning"))
        warning.setWordWrap(True)
        warning.setStyleSheet("background: #fdecea; color: #922b21; padding: 8px; border-radius: 4px")
        layout.addWidget(warning)
        self.understood = QCheckBox(t("ui.wizard.passphrase.understood"))
        self.understood.setObjectName("understood")
        layout.addWidget(self.understood)
        layout.addStretch(1)
        for widget in (self.first, self.second):
            widget.textChanged.connect(self._changed)
        self.understood.toggled.connect(self.completeChanged)
        self._changed()

    def _changed(self) -> None:
        score = passphrase_strength(self.first.text())
        self.meter.setValue(score)
        self.meter.setStyleSheet(f"QProgressBar::chunk {{ background: {STRENGTH_COLOURS[score]} }}")
        self.strength.setText(t(f"ui.wizard.strength.{score}"))
        self.problem.setText("")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return bool(self.first.text()) and bool(self.second.text()) and self.understood.isChecked()

    def validatePage(self) -> bool:
        try:
            self.passphrase = check_new_passphrase(self.first.text(), self.second.text())
        except ApplianceError as e:
            self.problem.setText(e.message())
            return False
        return True


class SpacePage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle(t("ui.wizard.space.title"))
        self.setSubTitle(t("ui.wizard.space.intro"))
        layout = QVBoxLayout(self)
        self.skip = QRadioButton(t("ui.wizard.space.skip"))
        self.skip.setObjectName("skip")
        self.paste = QRadioButton(t("ui.wizard.space.paste"))
        self.paste.setObjectName("paste")
        group = QButtonGroup(self)
        for b in (self.skip, self.paste):
            group.addButton(b)
        self.skip.setChecked(True)
        layout.addWidget(self.skip)
        layout.addWidget(self.paste)
        self.code = QPlainTextEdit()
        self.code.setObjectName("code")
        self.code.setPlaceholderText(t("ui.wizard.space.code_hint"))
        self.code.setMaximumHeight(90)
        layout.addWidget(self.code)
        row = QHBoxLayout()
        choose = QPushButton(t("ui.wizard.space.file"))
        choose.clicked.connect(self._choose)
        row.addWidget(choose)
        row.addStretch(1)
        layout.addLayout(row)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setObjectName("detail")
        layout.addWidget(self.detail)
        layout.addStretch(1)
        self.code.textChanged.connect(lambda: self.paste.setChecked(bool(self.code.toPlainText().strip())))
        self.invitation: str | None = None

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, t("ui.wizard.space.file"))
        if path:
            try:
                self.code.setPlainText(Path(path).read_text(encoding="utf-8").strip())
            except (OSError, UnicodeDecodeError):
                self.detail.setText(t("ui.wizard.space.unreadable", path))

    def validatePage(self) -> bool:
        self.invitation = None
        if self.skip.isChecked():
            return True
        code = self.code.toPlainText().strip()
        try:
            invitation = load_invitation(code)
        except ApplianceError as e:
            self.detail.setStyleSheet("color: #c0392b")
            self.detail.setText(e.message())
            return False
        self.invitation = code
        self.space_name = invitation.space_name
        return True


class FirstRunWizard(QWizard):
    """Creates the store; ``created(node, invitation or None)`` once it exists."""

    created = Signal(object, object)

    def __init__(self, settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle(t("ui.wizard.title"))
        self.setObjectName("wizard")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.identity = IdentityPage(settings.node_name or socket.gethostname())
        self.secret = PassphrasePage()
        self.space = SpacePage()
        for page in (self.identity, self.secret, self.space):
            self.addPage(page)
        translate_buttons(self)
        self.busy = QLabel()
        self.busy.setObjectName("busy")
        self.space.layout().addWidget(self.busy)
        self.resize(620, 480)
        self.node: Node | None = None

    def accept(self) -> None:  # Finish: create the store in a worker
        if self.node is not None:
            return super().accept()
        if not self.validateCurrentPage():  # the last page's check (the invitation) comes first
            return
        for button in (QWizard.WizardButton.FinishButton, QWizard.WizardButton.BackButton,
                       QWizard.WizardButton.CancelButton):
            self.button(button).setEnabled(False)
        self.busy.setText(t("ui.wizard.creating"))
        home, passphrase = self.settings.home, self.secret.passphrase
        name, org = self.identity.name.text().strip(), self.identity.org.text().strip()
        kdf = KDF_PROFILES[self.settings.kdf_profile]()
        run_task(lambda _progress: Node.init(home, passphrase, name=name, org=org, kdf=kdf),
                 self._created, self._failed)

    def _created(self, node) -> None:
        self.node = node
        self.busy.setText("")
        self.created.emit(node, self.space.invitation)
        super().accept()

    def _failed(self, error) -> None:
        self.busy.setText("")
        for button in (QWizard.WizardButton.FinishButton, QWizard.WizardButton.BackButton,
                       QWizard.WizardButton.CancelButton):
            self.button(button).setEnabled(True)
        show_error(self, error)
