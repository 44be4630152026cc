"""Evidence: the log (a page at a time, newest first), verify with a visible result, export a bundle."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit

from appliance import i18n
from appliance.i18n import get_lang, t
from ui import models
from ui.dialogs import info, show_error
from ui.pages.base import Page, button, short, state_text
from ui.tasks import run_task

ACTION = "ui.state.action."


def _cells(e, me: str) -> list:
    actor = t("ui.scale.ev.this_node") if e.actor == me else short(e.actor)
    return [e.index, e.ts[:19].replace("T", " "), state_text("action", e.action), short(e.subject, 40), actor]


def actions_named(needle: str) -> list[str]:
    """The actions whose name in the reader's language contains ``needle`` (the log keeps their codes)."""
    needle = needle.lower()
    return sorted(key.removeprefix(ACTION) for key, text in i18n.catalog(get_lang()).items()
                  if key.startswith(ACTION) and needle in text.lower())


class EvidencePage(Page):
    key = "evidence"
    watches = (object,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        row = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setPlaceholderText(t("ui.ev.search"))
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.newest)
        self.search.textChanged.connect(lambda text: None if text else self.newest())
        row.addWidget(self.search, 1)
        row.addWidget(button("ui.ev.newest", self.newest))
        self.verify_button = button("ui.ev.verify", self.verify)
        row.addWidget(self.verify_button)
        row.addWidget(button("ui.ev.export", self.export))
        self.layout_.addLayout(row)
        self.result = QLabel()
        self.result.setObjectName("verify_result")
        self.result.setWordWrap(True)
        self.result.setVisible(False)  # until a verification says something
        self.layout_.addWidget(self.result)
        self.where = QLabel()
        self.where.setObjectName("where")
        self.layout_.addWidget(self.where)
        self.model = models.PagedModel([t("ui.ev.col.index"), t("ui.ev.col.time"), t("ui.ev.col.action"),
                                        t("ui.ev.col.subject"), t("ui.ev.col.actor")],
                                       self._page, lambda e: _cells(e, self.node.identity.did), lambda e: e.index)
        self.log = models.paged_table(self.model, "log", stretch=3)
        self.layout_.addWidget(self.log, 1)
        self.filter: tuple[str, list[str]] | None = None  # None: not loaded yet
        self.size_seen = -1  # the log's size when it was last read

    def _page(self, before: int | None, limit: int) -> list:
        text, actions = self.filter or ("", [])
        return self.node.evidence.page(before=before, limit=limit, text=text or None, actions=actions)

    def refresh(self) -> None:
        """New entries go on top of what is shown (the reader keeps their place further down)."""
        needle = self.search.text().strip()
        wanted = (needle, actions_named(needle) if needle else [])
        size = self.node.evidence.size()
        if wanted == self.filter and size == self.size_seen:
            return  # nothing new (most events add no entry)
        self.size_seen = size
        if wanted != self.filter or not self.model.rows:
            self.filter = wanted
            self.model.reload()
        else:
            top = self.model.rows[0].index
            newer = [e for e in self._page(None, self.model.page) if e.index > top]
            if len(newer) == self.model.page:  # more arrived than a page: start again from the newest
                self.model.reload()
            else:
                self.model.prepend(newer)
        text, actions = self.filter
        count = self.node.evidence.count(text=text or None, actions=actions)
        self.where.setText(t("ui.scale.ev.matches", count) if text else t("ui.scale.ev.count", count))

    def newest(self) -> None:
        self.filter = None
        self.safe_refresh()
        self.log.scrollToTop()

    def verify(self) -> None:
        self.verify_button.setEnabled(False)
        self.result.setStyleSheet("")
        self.result.setText(t("ui.ev.verifying"))
        self.result.setVisible(True)
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
        self.result.setVisible(False)
        show_error(self, error)

    def export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, t("ui.ev.export"), str(Path.home() / "evidence.zip"))
        if path:
            self.export_to(Path(path))

    def export_to(self, path: Path) -> None:
        node = self.node
        run_task(lambda _p: node.export_evidence(path),
                 lambda n: info(self, t("ui.ev.exported", n, str(path))), lambda e: show_error(self, e))
