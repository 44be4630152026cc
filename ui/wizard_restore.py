"""The first run's other road: restore a node from a backup file (`dsnode backup`, Settings → Backup)
instead of creating a new one. The core's ``Node.restore`` checks the whole backup before anything
is placed (as `dsnode restore` does); the wizard asks for the file and the backup's passphrase."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout,
                               QWizardPage)

from appliance.i18n import t

BACKUP_FILTER = "*.bak *.dsbackup"


class RestorePage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle(t("ui.restore.title"))
        self.setSubTitle(t("ui.restore.intro"))
        layout = QVBoxLayout(self)
        form = QFormLayout()
        row = QHBoxLayout()
        self.file = QLineEdit()
        self.file.setObjectName("backup_file")
        self.file.setPlaceholderText(t("ui.restore.file_hint"))
        choose = QPushButton(t("ui.restore.choose"))
        choose.setObjectName("choose_backup")
        choose.clicked.connect(self._choose)
        row.addWidget(self.file, 1)
        row.addWidget(choose)
        form.addRow(t("ui.restore.file"), row)
        self.passphrase = QLineEdit()
        self.passphrase.setObjectName("backup_passphrase")
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow(t("ui.restore.passphrase"), self.passphrase)
        layout.addLayout(form)
        note = QLabel(t("ui.restore.note"))
        note.setWordWrap(True)
        note.setStyleSheet("color: #555")
        layout.addWidget(note)
        self.problem = QLabel()
        self.problem.setObjectName("problem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0392b")
        layout.addWidget(self.problem)
        layout.addStretch(1)
        for widget in (self.file, self.passphrase):
            widget.textChanged.connect(self.completeChanged)
            widget.textChanged.connect(lambda *_: self.problem.setText(""))

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, t("ui.restore.choose"), str(Path.home()),
                                              f"{t('ui.restore.filter')} ({BACKUP_FILTER});;{t('ui.restore.all')} (*)")
        if path:
            self.file.setText(path)

    def isComplete(self) -> bool:
        return bool(self.file.text().strip()) and bool(self.passphrase.text())

    def nextId(self) -> int:
        return -1

    def backup_path(self) -> Path:
        return Path(self.file.text().strip()).expanduser()

    def secret(self) -> bytes:
        return self.passphrase.text().encode("utf-8")
