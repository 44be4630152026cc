"""Contracts: negotiations with their per-step timeline; approve, reject with a reason, terminate."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QInputDialog, QLabel, QSplitter, QVBoxLayout,
                               QWidget)

from appliance.i18n import get_lang, t
from ui.dialogs import show_error
from ui.offer_editor import OfferEditor
from ui.pages.base import (Page, button, dataset_name, empty_hint, fill, peer_name, selected_key, short, state_text,
                           table)


class ContractsPage(Page):
    key = "contracts"
    watches = (object,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        tv = QVBoxLayout(top)
        tv.setContentsMargins(0, 0, 0, 0)
        self.list = table([t("ui.col.id"), t("ui.col.role"), t("ui.col.dataset"), t("ui.col.peer"),
                           t("ui.col.state"), t("ui.con.col.waiting"), t("ui.col.updated")], "negotiations", stretch=2)
        self.list.itemSelectionChanged.connect(self.show_detail)
        tv.addWidget(self.list)
        self.empty = empty_hint("ui.con.empty")
        row = QHBoxLayout()
        self.approve_b = button("ui.con.approve", self.approve)
        self.reject_b = button("ui.con.reject", self.reject)
        self.counter_b = button("ui.con.counter", self.counter)
        self.terminate_b = button("ui.con.terminate", self.terminate)
        for b in (self.approve_b, self.reject_b, self.counter_b, self.terminate_b):
            row.addWidget(b)
        row.addStretch(1)
        tv.addLayout(row)
        split.addWidget(top)
        bottom = QWidget()
        bv = QVBoxLayout(bottom)
        bv.setContentsMargins(0, 0, 0, 0)
        self.explain = QLabel()
        self.explain.setObjectName("explain")
        self.explain.setWordWrap(True)
        bv.addWidget(self.explain)
        self.timeline = table([t("ui.con.col.step"), t("ui.col.time"), t("ui.con.col.event"),
                               t("ui.con.col.direction"), t("ui.col.state"), t("ui.con.col.reason")], "timeline",
                              stretch=-1)
        bv.addWidget(self.timeline)
        split.addWidget(bottom)
        self.layout_.addWidget(split, 1)
        self.split = split
        self.layout_.addWidget(self.empty, 1)

    def refresh(self) -> None:
        items = self.node.contracts.list()
        keep = selected_key(self.list)
        fill(self.list, [[short(n.id), state_text("role", n.role), dataset_name(self.node, n.space_id, n.dataset_id),
                          peer_name(self.node, n.space_id, n.peer),
                          state_text("negotiation", n.state), t("ui.yes") if n.pending else "",
                          n.updated[:19].replace("T", " ")] for n in items], [n.id for n in items])
        self.split.setVisible(bool(items))
        self.empty.setVisible(not items)
        for i, n in enumerate(items):
            if n.id == keep:
                self.list.selectRow(i)
        self.show_detail()

    def show_detail(self) -> None:
        nid = selected_key(self.list)
        for b in (self.approve_b, self.reject_b, self.counter_b, self.terminate_b):
            b.setEnabled(nid is not None)
        if nid is None:
            self.explain.setText("")
            fill(self.timeline, [])
            return
        n = self.node.contracts.get(nid)
        self.approve_b.setEnabled(n.pending)
        self.reject_b.setEnabled(n.pending)
        self.counter_b.setEnabled(n.pending)
        self.terminate_b.setEnabled(n.state not in ("TERMINATED",))
        self.explain.setText(self.node.contracts.explain(nid, get_lang()))
        fill(self.timeline, [[s.n, s.ts[:19].replace("T", " "), state_text("event", s.event),
                              state_text("direction", s.direction), state_text("negotiation", s.state_after), s.reason]
                             for s in self.node.contracts.timeline(nid)])

    def approve(self) -> None:
        nid = selected_key(self.list)
        if nid:
            self.act(self.node.contracts.approve, nid)

    def _with_reason(self, title_key: str, then) -> None:
        nid = selected_key(self.list)
        if not nid:
            return
        dialog = QInputDialog(self)
        dialog.setObjectName("reason_dialog")
        dialog.setWindowTitle(t(title_key))
        dialog.setLabelText(t("ui.con.reason"))
        dialog.setOkButtonText(t("ui.ok"))
        dialog.setCancelButtonText(t("ui.cancel"))
        dialog.textValueSelected.connect(lambda text: self.act(then, nid, text.strip()) if text.strip() else None)
        dialog.open()

    def counter(self) -> None:
        """Propose other terms (the provider an offer, the consumer a request) made in the offer editor."""
        nid = selected_key(self.list)
        if not nid:
            return
        dialog = QDialog(self)
        dialog.setObjectName("counter_dialog")
        dialog.setWindowTitle(t("ui.con.counter"))
        v = QVBoxLayout(dialog)
        editor = OfferEditor(self.node.products)
        v.addWidget(editor)
        buttons = QDialogButtonBox()
        buttons.addButton(t("ui.con.counter_send"), QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(t("ui.cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        v.addWidget(buttons)
        buttons.rejected.connect(dialog.reject)
        self.counter_editor = editor

        def send() -> None:
            try:
                self.node.contracts.counter(nid, editor.offer_jsonld())
            except Exception as e:  # noqa: BLE001 - shown as a dialog (a core error) or an apology (a bug)
                show_error(dialog, e)
                return
            dialog.accept()
            self.safe_refresh()

        buttons.accepted.connect(send)
        dialog.resize(720, 360)
        dialog.open()
        self.counter_dialog = dialog

    def reject(self) -> None:
        self._with_reason("ui.con.reject", self.node.contracts.reject)

    def terminate(self) -> None:
        self._with_reason("ui.con.terminate", self.node.contracts.terminate)
