"""Products: the node's data products, a new one from a template (with the offer's plain-language
summary as you fill it in), and asking a space to list one."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QInputDialog, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QVBoxLayout, QWidget)

from appliance.i18n import t
from ui.offer_editor import OfferEditor
from ui.pages.base import Page, button, empty_hint, fill, selected_key, short, state_text, table

PICK = 200  # resources offered for a new product at once (the newest, or those the search finds)


class ProductsPage(Page):
    key = "products"
    watches = (object,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.list = table([t("ui.pr.col.title"), t("ui.col.state"), t("ui.res.col.version"), t("ui.pr.col.offers"),
                           t("ui.pr.col.listings")], "products")
        self.layout_.addWidget(self.list, 1)
        self.empty = empty_hint("ui.pr.empty")
        self.layout_.addWidget(self.empty, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel(t("ui.pr.space")))
        self.space = QComboBox()
        self.space.setObjectName("space")
        row.addWidget(self.space, 1)
        row.addWidget(button("ui.pr.list_in", self.list_in))
        row.addWidget(button("ui.pr.delist", self.delist))
        row.addStretch(1)
        self.layout_.addLayout(row)
        self.layout_.addWidget(self._new_form())

    def _new_form(self) -> QWidget:
        box = QGroupBox(t("ui.pr.new"))
        v = QVBoxLayout(box)
        form = QFormLayout()
        self.title_edit = QLineEdit()
        self.title_edit.setObjectName("title")
        form.addRow(t("ui.pr.col.title"), self.title_edit)
        self.resources = QListWidget()
        self.resources.setObjectName("resources")
        self.resources.setMaximumHeight(110)
        self.find = QLineEdit()
        self.find.setObjectName("find_resources")
        self.find.setPlaceholderText(t("ui.scale.res.search"))
        self.find.setClearButtonEnabled(True)
        self.find.returnPressed.connect(self.fill_resources)
        self.find.textChanged.connect(lambda text: None if text else self.fill_resources())
        pick = QVBoxLayout()
        pick.addWidget(self.find)
        pick.addWidget(self.resources)
        form.addRow(t("ui.pr.resources"), pick)
        v.addLayout(form)
        self.editor = OfferEditor(self.node.products)
        v.addWidget(self.editor)
        row = QHBoxLayout()
        row.addWidget(button("ui.pr.create", self.create))
        row.addStretch(1)
        v.addLayout(row)
        return box

    def refresh(self) -> None:
        products = self.node.products.list()
        names = {s.space_id: s.name or s.space_id for s in self.node.sync.spaces()}

        def listed(p) -> str:
            return "、".join(t("ui.pr.listing_in", names.get(x.space_id, x.space_id),
                              state_text("listing", str(x.status))) for x in p.listings) or "-"

        fill(self.list, [[p.title, state_text("product", str(p.status)), p.version, len(p.offers), listed(p)]
                         for p in products], [p.id for p in products])
        self.list.setVisible(bool(products))
        self.empty.setVisible(not products)
        self.space.clear()
        for s in self.node.sync.spaces():
            self.space.addItem(s.name or s.space_id, s.space_id)
        self.fill_resources()

    def fill_resources(self) -> None:
        """The resources to choose from: the ticked ones, then the newest (or those found) up to ``PICK``;
        a register of thousands is searched, never listed whole."""
        chosen = [self.resources.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.resources.count())
                  if self.resources.item(i).checkState() == Qt.CheckState.Checked]
        ticked = [r for r in map(self._resource, chosen) if r is not None and not r.removed]
        found = self.node.resources.page(limit=PICK, text=self.find.text().strip())
        self.resources.clear()
        for r in ticked + [r for r in found if r.id not in chosen]:
            item = QListWidgetItem(f"{r.title} ({short(r.id, 8)})")
            item.setData(Qt.ItemDataRole.UserRole, r.id)
            item.setCheckState(Qt.CheckState.Checked if r.id in chosen else Qt.CheckState.Unchecked)
            self.resources.addItem(item)

    def _resource(self, rid: str):
        from appliance.errors import ResourceNotFound

        try:
            return self.node.resources.get(rid)
        except ResourceNotFound:  # removed meanwhile (by the CLI, say): no longer offered
            return None

    def create(self) -> None:
        ids = [self.resources.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.resources.count())
               if self.resources.item(i).checkState() == Qt.CheckState.Checked]

        def make():
            offer = self.editor.offer()
            return self.node.products.create(title=self.title_edit.text(), resource_ids=ids, offers=[offer])

        self.act(make, then=lambda p: self.ctx.window.status(t("ui.pr.created", p.title)))

    def list_in(self) -> None:
        pid, space = selected_key(self.list), self.space.currentData()
        if pid and space:
            self.act(self.node.products.request_listing, pid, space,
                     then=lambda _x: self.ctx.window.status(t("ui.pr.listing_sent", space)))

    def delist(self) -> None:
        """Withdraw the selected product from the chosen space, with a reason its users see."""
        pid, space = selected_key(self.list), self.space.currentData()
        if not (pid and space):
            return
        dialog = QInputDialog(self)
        dialog.setObjectName("reason_dialog")
        dialog.setWindowTitle(t("ui.pr.delist"))
        dialog.setLabelText(t("ui.con.reason"))
        dialog.setOkButtonText(t("ui.ok"))
        dialog.setCancelButtonText(t("ui.cancel"))

        def done(text: str) -> None:
            if text.strip():
                self.act(lambda: self.node.products.delist(pid, space, reason=text.strip()),
                         then=lambda _x: self.ctx.window.status(t("ui.pr.delisted", space)))

        dialog.textValueSelected.connect(done)
        dialog.open()
        self.reason_dialog = dialog
