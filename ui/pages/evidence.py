"""Evidence: the log (a page at a time, newest first), verify with a visible result, export a bundle."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit

from appliance.i18n import get_lang, t
from ui.dialogs import info, show_error
from ui.pages.base import Page, button, fill, short, state_text, table
from ui.tasks import run_task

PAGE = 200


class EvidencePage(Page):
    key = "evidence"
    watches = (object,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        row = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setPlaceholderText(t("ui.ev.search"))
        self.search.returnPressed.connect(self.safe_refresh)
        row.addWidget(self.search, 1)
        row.addWidget(button("ui.ev.older", self.older))
        row.addWidget(button("ui.ev.newest", self.newest))
        self.verify_button = button("ui.ev.verify", self.verify)
        row.addWidget(self.verify_button)
        row.addWidget(button("ui.ev.export", self.export))
        self.layout_.addLayout(row)
        self.result = QLabel()
        self.result.setObjectName("verify_result")
        self.result.setWordWrap(True)
        self.layout_.addWidget(self.result)
        self.where = QLabel()
        self.layout_.addWidget(self.where)
        self.log = table([t("ui.ev.col.index"), t("ui.ev.col.time"), t("ui.ev.col.action"), t("ui.ev.col.subject"),
                          t("ui.ev.col.actor")], "log", stretch=3)
        self.layout_.addWidget(self.log, 1)
        self.stop: int | None = None  # None: the newest page

    def refresh(self) -> None:
        size = self.node.evidence.size()
        stop = size if self.stop is None else min(self.stop, size)
        start = max(0, stop - PAGE)
        entries = list(self.node.evidence.entries(start, stop))
        needle = self.search.text().strip().lower()
        if needle:
            entries = [e for e in entries if needle in f"{e.action} {e.subject} {e.actor}".lower()]
        fill(self.log, [[e.index, e.ts[:19].replace("T", " "), state_text("action", e.action), short(e.subject, 28),
                         short(e.actor)] for e in reversed(entries)])
        self.where.setText(t("ui.ev.range", start + 1 if stop else 0, stop, size))

    def older(self) -> None:
        size = self.node.evidence.size()
        self.stop = max(PAGE, (size if self.stop is None else self.stop) - PAGE)
        self.safe_refresh()

    def newest(self) -> None:
        self.stop = None
        self.safe_refresh()

    def verify(self) -> None:
        self.verify_button.setEnabled(False)
        self.result.setStyleSheet("")
        self.result.setText(t("ui.ev.verifying"))
        node = self.node
        run_task(lambda _p: node.verify_evidence(), self._verified, self._failed)

    def _verified(self, report) -> None:
        self.verify_button.setEnabled(True)
        if report.ok:
            self.result.setStyleSheet("color: #1e8449; font-weight: bold")
            self.result.setText(t("ui.ev.verified", report.size, report.checkpoints))
        else:
            self.result.setStyleSheet("color: #c0392b; font-weight: bold")
            self.result.setText(t("ui.ev.tampered") + "\n" + "\n".join(report.messages(get_lang())[:10]))

    def _failed(self, error) -> None:
        self.verify_button.setEnabled(True)
        self.result.setText("")
        show_error(self, error)

    def export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, t("ui.ev.export"), str(Path.home() / "evidence.zip"))
        if path:
            self.export_to(Path(path))

    def export_to(self, path: Path) -> None:
        node = self.node
        run_task(lambda _p: node.export_evidence(path),
                 lambda n: info(self, t("ui.ev.exported", n, str(path))), lambda e: show_error(self, e))
