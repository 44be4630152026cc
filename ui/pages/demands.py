"""Demands (供需撮合): publish what data this node needs, browse what others need, and answer a
demand that one of this node's listed products matches with an offer (a negotiation starts)."""

from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QVBoxLayout)

from appliance.i18n import t
from ui.dialogs import show_error
from ui.offer_editor import OfferEditor
from ui.pages.base import Page, button, dataset_name, empty_hint, fill, peer_name, selected_key, table


def row_of(*widgets) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    row.addStretch(1)
    return row


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.replace("，", ",").replace("、", ",").split(",") if w.strip()]


class DemandsPage(Page):
    key = "demands"
    watches = (object,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        row = QHBoxLayout()
        row.addWidget(QLabel(t("ui.pr.space")))
        self.space = QComboBox()
        self.space.setObjectName("space")
        self.space.currentIndexChanged.connect(lambda *_: self.safe_refresh())
        row.addWidget(self.space, 1)
        self.layout_.addLayout(row)
        self.layout_.addWidget(QLabel(t("ui.dem.open")))
        self.open = table([t("ui.pr.col.title"), t("ui.dem.col.owner"), t("ui.dem.col.keywords"),
                           t("ui.dem.col.purpose"), t("ui.dem.col.expires")], "demands")
        self.layout_.addWidget(self.open, 1)
        self.withdraw_b = button("ui.dem.withdraw", self.withdraw)
        self.open.itemSelectionChanged.connect(self._selected)
        self.mine: set[str] = set()
        self.no_open = empty_hint("ui.dem.no_open")
        self.layout_.addWidget(self.no_open, 1)
        self.layout_.addLayout(row_of(self.withdraw_b))
        self.layout_.addWidget(QLabel(t("ui.dem.matches")))
        self.matches = table([t("ui.pr.col.title"), t("ui.col.dataset"), t("ui.dem.col.shared")], "matches")
        self.layout_.addWidget(self.matches, 1)
        self.no_matches = empty_hint("ui.dem.no_matches")
        self.layout_.addWidget(self.no_matches, 1)
        self.answer_b = button("ui.dem.answer", self.answer)
        self.layout_.addLayout(row_of(self.answer_b))
        box = QGroupBox(t("ui.dem.new"))
        form = QFormLayout(box)
        self.title_edit = QLineEdit()
        self.title_edit.setObjectName("demand_title")
        self.keywords = QLineEdit()
        self.keywords.setObjectName("keywords")
        self.keywords.setPlaceholderText(t("ui.dem.keywords_hint"))
        self.purpose = QLineEdit()
        self.purpose.setObjectName("purpose")
        form.addRow(t("ui.pr.col.title"), self.title_edit)
        form.addRow(t("ui.dem.col.keywords"), self.keywords)
        form.addRow(t("ui.dem.col.purpose"), self.purpose)
        form.addRow("", row_of(button("ui.dem.publish", self.publish)))
        self.layout_.addWidget(box)

    def refresh(self) -> None:
        keep = self.space.currentData()
        self.space.blockSignals(True)
        self.space.clear()
        for s in self.node.sync.spaces():
            self.space.addItem(s.name or s.space_id, s.space_id)
        i = self.space.findData(keep)
        self.space.setCurrentIndex(i if i >= 0 else 0)
        self.space.blockSignals(False)
        space = self.space.currentData()
        demands = self.node.demands.list(space) if space else []
        fill(self.open, [[d.title, t("ui.dem.me") if d.owner == self.node.identity.did
                          else peer_name(self.node, d.space_id, d.owner),
                          "、".join(d.detail.get("keywords") or []), d.detail.get("purpose", ""),
                          (d.expires or "-")[:10]] for d in demands], [d.id for d in demands])
        titles = {d.id: d.title for d in demands}
        self.mine = {d.id for d in demands if d.owner == self.node.identity.did}
        matches = self.node.demands.matches(space) if space else []
        fill(self.matches, [[titles.get(m.demand_id, m.demand_id), dataset_name(self.node, space, m.dataset_id),
                             "、".join(m.shared)] for m in matches], [(m.demand_id, m.dataset_id) for m in matches])
        for tbl, hint, b, rows in ((self.open, self.no_open, self.withdraw_b, demands),
                                   (self.matches, self.no_matches, self.answer_b, matches)):
            tbl.setVisible(bool(rows))
            b.setVisible(bool(rows))
            hint.setVisible(not rows)
        self._selected()

    def _selected(self) -> None:
        self.withdraw_b.setEnabled(selected_key(self.open) in self.mine)

    def publish(self) -> None:
        space = self.space.currentData()
        title = self.title_edit.text().strip()
        if not (space and title):
            return
        detail = {k: v for k, v in (("keywords", _words(self.keywords.text())),
                                    ("purpose", self.purpose.text().strip())) if v}
        self.act(lambda: self.node.demands.publish(space, title, **detail),
                 then=lambda _d: (self.title_edit.clear(), self.ctx.window.status(t("ui.dem.published", title))))

    def withdraw(self) -> None:
        did = selected_key(self.open)
        if did:
            self.act(self.node.demands.withdraw, did)

    def answer(self) -> None:
        """Offer terms (from the offer editor) to the demand's owner for the matching product."""
        key = selected_key(self.matches)
        if not key:
            return
        demand_id, dataset_id = key
        dialog = QDialog(self)
        dialog.setObjectName("answer_dialog")
        dialog.setWindowTitle(t("ui.dem.answer"))
        v = QVBoxLayout(dialog)
        editor = OfferEditor(self.node.products)
        v.addWidget(editor)
        buttons = QDialogButtonBox()
        buttons.addButton(t("ui.con.counter_send"), QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(t("ui.cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        v.addWidget(buttons)
        buttons.rejected.connect(dialog.reject)

        def send() -> None:
            try:
                self.node.demands.answer(demand_id, dataset_id, editor.offer_jsonld())
            except Exception as e:  # noqa: BLE001 - shown as a dialog (a core error) or an apology (a bug)
                show_error(dialog, e)
                return
            dialog.accept()
            self.ctx.window.status(t("ui.dem.answered"))

        buttons.accepted.connect(send)
        dialog.resize(720, 360)
        dialog.open()
        self.answer_dialog = dialog
