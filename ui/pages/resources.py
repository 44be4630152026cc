"""Resources: the register (register by button or by dropping files), and one resource's detail:
schema, labels, sensitive findings, masking rules with a before/after preview."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QSpinBox, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from appliance.domain.catalog import (ResourceLabelled, ResourceMaskingSet, ResourceRegistered, ResourceRemoved,
                                      ResourceUpdated, ResourceVersioned)
from appliance.i18n import t
from appliance.services.catalog.masking import RULES
from ui import models
from ui.dialogs import show_error
from ui.pages.base import Page, button, empty_hint, fill, state_text, table
from ui.tasks import run_task

CATEGORIES = ("general", "important", "core")


def _cells(r) -> list:
    """A resource's row: one read for the list (a version's details only for the resource shown)."""
    suggested = t("ui.res.suggested", r.suggested_sensitivity) if r.suggested_sensitivity else "-"
    return [r.title, state_text("kind", str(r.kind)), r.sensitivity or suggested, r.current_version]


class ResourcesPage(Page):
    key = "resources"
    watches = (ResourceRegistered, ResourceVersioned, ResourceLabelled, ResourceUpdated, ResourceRemoved,
               ResourceMaskingSet)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.setAcceptDrops(True)
        row = QHBoxLayout()
        row.addWidget(button("ui.res.register", self.choose_files))
        row.addWidget(QLabel(t("ui.res.drop_hint")))
        row.addStretch(1)
        self.layout_.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setObjectName("register_progress")
        self.progress.setVisible(False)
        self.progress_label = QLabel()
        self.progress_label.setVisible(False)
        self.layout_.addWidget(self.progress_label)
        self.layout_.addWidget(self.progress)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.model = models.PagedModel(
            [t("ui.res.col.title"), t("ui.res.col.kind"), t("ui.res.col.sensitivity"), t("ui.res.col.version")],
            self._page, _cells, lambda r: r.id)
        self.list = models.paged_table(self.model, "resources")
        self.list.selectionModel().selectionChanged.connect(self.show_detail)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        find = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setPlaceholderText(t("ui.scale.res.search"))
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.safe_refresh)
        self.search.textChanged.connect(lambda text: None if text else self.safe_refresh())
        find.addWidget(self.search, 1)
        self.count = QLabel()
        self.count.setObjectName("count")
        find.addWidget(self.count)
        lv.addLayout(find)
        lv.addWidget(self.list)
        self.empty = empty_hint("ui.res.empty")
        lv.addWidget(self.empty, 1)
        split.addWidget(left)
        self.detail = QTabWidget()
        self.detail.setObjectName("detail")
        split.addWidget(self.detail)
        split.setSizes([420, 520])
        self.layout_.addWidget(split, 1)
        self._build_detail()
        self.queue: list[Path] = []
        self.busy = False
        self.stale = True  # the register changed since the list was read
        self.loaded_for: str | None = None  # the search the list was read for

    # --- the list and registering ---------------------------------------------------------------

    def _page(self, after: str | None, limit: int) -> list:
        """The list's rows go on with the search they were read for (not what is typed since)."""
        return self.node.resources.page(limit=limit, after=after, text=self.loaded_for or None)

    def on_event(self, event: object) -> None:
        if isinstance(event, self.watches):
            self.stale = True  # read again when next shown (now, if it is)
        super().on_event(event)

    def refresh(self) -> None:
        """The first page of the register, newest first (the list reads more as it scrolls). Coming
        back to the page with nothing changed keeps the rows read and the place in them."""
        needle = self.search.text().strip()
        if not self.stale and needle == self.loaded_for:
            return
        self.stale, self.loaded_for = False, needle
        keep = self.current()
        self.model.reload()
        total = len(self.model.rows) if self.model.exhausted else self.node.resources.count(text=needle)
        self.count.setText(t("ui.scale.res.count", total))
        anything = bool(self.model.rows) or bool(needle)
        self.list.setVisible(anything)
        self.search.setVisible(anything)
        self.count.setVisible(anything)
        self.empty.setVisible(not anything)
        row = self.model.row_of(keep) if keep is not None else -1
        if row >= 0:
            self.list.selectRow(row)
        else:
            self.detail.setVisible(False)

    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, t("ui.res.register"))
        self.register([Path(p) for p in paths])

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.register(paths)

    def register(self, paths: list[Path]) -> None:
        """Register each file in turn, in a worker, with a progress bar."""
        self.queue.extend(paths)
        if not self.busy:
            self._next()

    def _next(self) -> None:
        if not self.queue:
            self.busy = False
            self.progress.setVisible(False)
            self.progress_label.setVisible(False)
            self.safe_refresh()
            return
        self.busy = True
        path = self.queue.pop(0)
        self.progress_label.setText(t("ui.res.registering", path.name))
        self.progress_label.setVisible(True)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        resources = self.node.resources
        run_task(lambda report: resources.register(path, progress=report), self._registered, self._failed,
                 self._progress)

    def _progress(self, done, total) -> None:
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(done, total) / total))

    def _registered(self, registration) -> None:
        self.ctx.window.status(t("ui.res.registered", registration.resource.title)
                               if registration.created or registration.changed
                               else t("ui.res.unchanged", registration.resource.title))
        self._next()

    def _failed(self, error) -> None:
        show_error(self, error)
        self._next()

    # --- one resource ---------------------------------------------------------------------------

    def _build_detail(self) -> None:
        about = QWidget()
        self.about = QFormLayout(about)
        self.detail.addTab(about, t("ui.res.tab.about"))
        self.schema = table([t("ui.res.col.column"), t("ui.res.col.type"), t("ui.res.col.sensitive"),
                             t("ui.res.col.nulls")], "schema", stretch=-1)
        self.detail.addTab(self.schema, t("ui.res.tab.schema"))
        labels = QWidget()
        lf = QFormLayout(labels)
        self.category = QComboBox()
        self.category.setObjectName("category")
        for c in CATEGORIES:
            self.category.addItem(t(f"ui.res.category.{c}"), c)
        self.sensitivity = QSpinBox()
        self.sensitivity.setObjectName("sensitivity")
        self.sensitivity.setRange(1, 4)
        lf.addRow(t("ui.res.category"), self.category)
        lf.addRow(t("ui.res.sensitivity"), self.sensitivity)
        lf.addRow(button("ui.save", self.save_labels, name="save_labels"))
        self.findings = QLabel()
        self.findings.setWordWrap(True)
        self.findings.setObjectName("findings")
        lf.addRow(t("ui.res.findings"), self.findings)
        self.detail.addTab(labels, t("ui.res.tab.labels"))
        masking = QWidget()
        mv = QVBoxLayout(masking)
        self.rules = table([t("ui.res.col.column"), t("ui.res.col.rule")], "rules")
        self.rules.setMaximumHeight(150)
        mv.addWidget(self.rules)
        add = QHBoxLayout()
        self.rule_column = QComboBox()
        self.rule_column.setObjectName("rule_column")
        self.rule_kind = QComboBox()
        self.rule_kind.setObjectName("rule_kind")
        for r in RULES:
            self.rule_kind.addItem(t(f"ui.res.rule.{r}"), r)
        add.addWidget(self.rule_column)
        add.addWidget(self.rule_kind)
        add.addWidget(button("ui.res.rule_set", self.set_rule))
        add.addWidget(button("ui.res.rule_clear", self.clear_rule))
        mv.addLayout(add)
        box = QGroupBox(t("ui.res.preview"))
        pv = QVBoxLayout(box)
        self.before = table([], "before", stretch=-1)
        self.after = table([], "after", stretch=-1)
        pv.addWidget(QLabel(t("ui.res.before")))
        pv.addWidget(self.before)
        pv.addWidget(QLabel(t("ui.res.after")))
        pv.addWidget(self.after)
        mv.addWidget(box, 1)
        self.detail.addTab(masking, t("ui.res.tab.masking"))
        self.detail.setVisible(False)

    def current(self) -> str | None:
        return models.selected_key(self.list)

    def show_detail(self) -> None:
        rid = self.current()
        if rid is None:
            self.detail.setVisible(False)
            return
        try:
            self._show(rid)
        except Exception as e:  # noqa: BLE001 - shown as a dialog
            show_error(self, e)

    def _show(self, rid: str) -> None:
        r = self.node.resources.get(rid)
        v = self.node.resources.version(rid)
        self.detail.setVisible(True)
        while self.about.rowCount():
            self.about.removeRow(0)
        for key, value in (("title", r.title), ("kind", state_text("kind", str(r.kind))),
                           ("mode", state_text("mode", str(r.mode))), ("source", r.source),
                           ("version", r.current_version), ("size", v.size), ("rows", v.row_count),
                           ("format", v.format), ("sha256", v.sha256[:16] + "…"), ("created", r.created[:19])):
            label = QLabel("-" if value in (None, "") else str(value))
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.about.addRow(t(f"ui.res.field.{key}"), label)
        fill(self.schema, [[c.name, c.type, state_text("sensitive", c.sensitive) if c.sensitive else "",
                            c.nulls] for c in v.columns])
        self.category.setCurrentIndex(max(0, self.category.findData(str(r.category))))
        self.sensitivity.setValue(r.sensitivity or r.suggested_sensitivity or 1)
        found = [state_text("sensitive", str(f.get("kind", "")))
                 + (f" ({f['column']})" if f.get("column") else "") for f in v.sensitive]
        self.findings.setText("、".join(found) if found else t("ui.res.no_findings"))
        fill(self.rules, [[x.get("column", ""), t(f"ui.res.rule.{x['rule']}")] for x in r.masking])
        self.rule_column.clear()
        self.rule_column.addItems(v.column_names)
        self._preview(rid)

    def _preview(self, rid: str) -> None:
        v = self.node.resources.version(rid)
        if not v.columns:
            for w in (self.before, self.after):
                w.setColumnCount(0)
                w.setRowCount(0)
            return
        preview = self.node.resources.mask_preview(rid)
        for w, cols, idx in ((self.before, preview.columns_before, 0), (self.after, preview.columns_after, 1)):
            w.setColumnCount(len(cols))
            w.setHorizontalHeaderLabels(cols)
            fill(w, [pair[idx] for pair in preview.rows])

    def save_labels(self) -> None:
        rid = self.current()
        if rid:
            self.act(lambda: self.node.resources.label(rid, category=self.category.currentData(),
                                                       sensitivity=self.sensitivity.value()))

    def set_rule(self) -> None:
        rid, column = self.current(), self.rule_column.currentText()
        if rid and column:
            self.act(lambda: self.node.resources.set_column_rule(rid, {"column": column,
                                                                       "rule": self.rule_kind.currentData()}),
                     then=lambda _r: self._show(rid))

    def clear_rule(self) -> None:
        rid, column = self.current(), self.rule_column.currentText()
        if rid and column:
            self.act(lambda: self.node.resources.clear_column_rule(rid, column), then=lambda _r: self._show(rid))
