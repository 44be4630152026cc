"""The first run: who this node is, the store passphrase (and a recovery backup), and a space to
join (or not yet); or, instead, a node restored from a backup (:mod:`ui.wizard_restore`).

The checks and the store creation are the core's (:mod:`appliance.host.flows`, ``Node.init``,
``Node.restore``, ``Node.backup``); the wizard asks and shows. Creating or restoring the store
derives the key (slow on purpose): a worker does it.
"""

from __future__ import annotations

import socket
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QRadioButton, QVBoxLayout, QWidget, QWizard, QWizardPage)

from appliance.errors import ApplianceError
from appliance.host.flows import MIN_PASSPHRASE, check_new_passphrase, passphrase_strength
from appliance.i18n import t
from appliance.node import KDF_PROFILES, Node
from appliance.services.membership.invitation import load_invitation
from ui.dialogs import info, show_error
from ui.join_dialog import InvitationInput
from ui.tasks import run_task
from ui.wizard_restore import RestorePage

STRENGTH_COLOURS = ("#c0392b", "#d35400", "#b7950b", "#27ae60", "#1e8449")
IDENTITY, PASSPHRASE, SPACE, RESTORE = range(4)  # the pages' ids


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
        layout = QVBoxLayout(self)
        self.new = QRadioButton(t("ui.restore.choice_new"))
        self.new.setObjectName("new_node")
        self.restore = QRadioButton(t("ui.restore.choice_restore"))
        self.restore.setObjectName("restore_node")
        group = QButtonGroup(self)
        for b in (self.new, self.restore):
            group.addButton(b)
            layout.addWidget(b)
        self.new.setChecked(True)
        form = QFormLayout()
        layout.addLayout(form)
        layout.addStretch(1)
        self.name = QLineEdit(default_name)
        self.name.setObjectName("name")
        self.org = QLineEdit()
        self.org.setObjectName("org")
        self.org.setPlaceholderText(t("ui.wizard.identity.org_hint"))
        form.addRow(t("ui.wizard.identity.name"), self.name)
        form.addRow(t("ui.wizard.identity.org"), self.org)
        self.name.textChanged.connect(self.completeChanged)
        self.restore.toggled.connect(self._road)

    def _road(self) -> None:
        for w in (self.name, self.org):
            w.setEnabled(not self.restore.isChecked())
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.restore.isChecked() or bool(self.name.text().strip())

    def nextId(self) -> int:
        return RESTORE if self.restore.isChecked() else PASSPHRASE


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
        self.recovery = QCheckBox(t("ui.restore.recovery"))
        self.recovery.setObjectName("recovery")
        layout.addWidget(self.recovery)
        row = QHBoxLayout()
        self.recovery_file = QLineEdit(str(_free_name(Path.home() / "dsnode-recovery.dsbackup")))
        self.recovery_file.setObjectName("recovery_file")
        self.recovery_file.setEnabled(False)
        choose = QPushButton(t("ui.restore.choose_place"))
        choose.setEnabled(False)
        choose.clicked.connect(self._choose_recovery)
        row.addWidget(self.recovery_file, 1)
        row.addWidget(choose)
        layout.addLayout(row)
        self.recovery.toggled.connect(self.recovery_file.setEnabled)
        self.recovery.toggled.connect(choose.setEnabled)
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

    def _choose_recovery(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, t("ui.restore.recovery"), self.recovery_file.text())
        if path:
            self.recovery_file.setText(path)

    def recovery_path(self) -> Path | None:
        """Where to write a recovery backup once the node exists (None: not now)."""
        text = self.recovery_file.text().strip()
        return Path(text).expanduser() if self.recovery.isChecked() and text else None

    def isComplete(self) -> bool:
        return bool(self.first.text()) and bool(self.second.text()) and self.understood.isChecked()

    def validatePage(self) -> bool:
        try:
            self.passphrase = check_new_passphrase(self.first.text(), self.second.text())
        except ApplianceError as e:
            self.problem.setText(e.message())
            return False
        recovery = self.recovery_path()
        if recovery is not None and recovery.exists():  # never write over another backup
            self.problem.setText(t("ui.restore.recovery_exists", str(recovery)))
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
        self.input = InvitationInput()  # the code, an invitation file or its QR image
        self.code, self.detail = self.input.code, self.input.detail
        layout.addWidget(self.input)
        layout.addStretch(1)
        self.code.textChanged.connect(lambda: self.paste.setChecked(bool(self.code.toPlainText().strip())))
        self.invitation: str | None = None

    def nextId(self) -> int:
        return -1  # the last page of a new node

    def validatePage(self) -> bool:
        self.invitation = None
        if self.skip.isChecked():
            return True
        code = self.code.toPlainText().strip()
        try:
            invitation = load_invitation(code)
        except ApplianceError as e:
            self.input.say_problem(e)
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
        self.restore = RestorePage()
        for page_id, page in ((IDENTITY, self.identity), (PASSPHRASE, self.secret), (SPACE, self.space),
                              (RESTORE, self.restore)):
            self.setPage(page_id, page)
        self.setStartId(IDENTITY)
        translate_buttons(self)
        self.busy = QLabel()
        self.busy.setObjectName("busy")
        self.busy.setWordWrap(True)
        self.space.layout().addWidget(self.busy)
        self.restore_busy = QLabel()
        self.restore_busy.setObjectName("restore_busy")
        self.restore.layout().addWidget(self.restore_busy)
        self.currentIdChanged.connect(self._finish_text)
        self.resize(640, 520)
        self.node: Node | None = None

    def _finish_text(self, page_id: int) -> None:
        self.setButtonText(QWizard.WizardButton.FinishButton,
                           t("ui.restore.finish") if page_id == RESTORE else t("ui.wizard.finish"))

    def accept(self) -> None:  # Finish: create (or restore) the store in a worker
        if self.node is not None:
            return super().accept()
        if not self.validateCurrentPage():  # the last page's check (the invitation) comes first
            return
        self._buttons(False)
        if self.currentId() == RESTORE:
            self.restore_busy.setText(t("ui.restore.restoring"))
            backup, secret, home = self.restore.backup_path(), self.restore.secret(), self.settings.home
            run_task(lambda _progress: (Node.restore(backup, home, secret), None, None), self._created, self._failed)
            return
        self.busy.setText(t("ui.wizard.creating"))
        home, passphrase = self.settings.home, self.secret.passphrase
        name, org = self.identity.name.text().strip(), self.identity.org.text().strip()
        kdf = KDF_PROFILES[self.settings.kdf_profile]()
        recovery = self.secret.recovery_path()
        run_task(lambda _progress: _create(home, passphrase, name, org, kdf, recovery), self._created, self._failed)

    def _buttons(self, enabled: bool) -> None:
        for button in (QWizard.WizardButton.FinishButton, QWizard.WizardButton.BackButton,
                       QWizard.WizardButton.CancelButton):
            self.button(button).setEnabled(enabled)

    def _created(self, result) -> None:
        node, backup, backup_error = result
        self.node = node
        self.busy.setText("")
        self.restore_busy.setText("")
        self.created.emit(node, self.space.invitation if self.currentId() != RESTORE else None)
        if backup is not None:
            info(None, t("ui.set.backup_done", str(backup.path), backup.size))
        if backup_error is not None:  # the node exists; the backup can be made again in Settings
            show_error(None, backup_error)
        super().accept()

    def _failed(self, error) -> None:
        self.busy.setText("")
        self.restore_busy.setText("")
        self._buttons(True)
        if self.currentId() == RESTORE and isinstance(error, ApplianceError):
            self.restore.problem.setText(error.message())  # a wrong passphrase, a damaged file: said in place
            return
        show_error(self, error)


def _free_name(path: Path) -> Path:
    """``path``, or ``stem-2.suffix`` (3, …) when a file of that name is there already."""
    n = 1
    candidate = path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _create(home: Path, passphrase: bytes, name: str, org: str, kdf, recovery: Path | None):
    """(node, backup or None, the backup's error or None): the new store, and its recovery backup
    when one was asked for (a failed backup leaves the node; Settings can write one later)."""
    node = Node.init(home, passphrase, name=name, org=org, kdf=kdf)
    if recovery is None:
        return node, None, None
    try:
        return node, node.backup(recovery), None
    except ApplianceError as e:
        return node, None, e
