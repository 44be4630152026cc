"""Contracts: negotiations with their per-step timeline; approve, reject with a reason, terminate;
an agreement's validity (from, until, its terms in words) and, for the provider, retiring it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QInputDialog, QLabel, QSplitter, QVBoxLayout,
                               QWidget)

from appliance.domain.negotiation import Event
from appliance.i18n import get_lang, t
from appliance.services.contracts.terms import offer_summary
from appliance.services.delivery.payload import expires
from ui.dialogs import show_error
from ui.offer_editor import OfferEditor
from ui.pages.base import Names, Page, button, empty_hint, fill, selected_key, short, state_text, table


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
                           t("ui.col.state"), t("ui.con.col.waiting"), t("ui.agr.col.until"), t("ui.col.updated")],
                          "negotiations", stretch=2)
        self.list.itemSelectionChanged.connect(self.show_detail)
        tv.addWidget(self.list)
        self.empty = empty_hint("ui.con.empty")
        row = QHBoxLayout()
        self.approve_b = button("ui.con.approve", self.approve)
        self.reject_b = button("ui.con.reject", self.reject)
        self.counter_b = button("ui.con.counter", self.counter)
        self.terminate_b = button("ui.con.terminate", self.terminate)
        self.retire_b = button("ui.agr.retire", self.retire)
        for b in (self.approve_b, self.reject_b, self.counter_b, self.terminate_b, self.retire_b):
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
        self.agreement = QLabel()
        self.agreement.setObjectName("agreement")
        self.agreement.setWordWrap(True)
        self.agreement.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bv.addWidget(self.agreement)
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
        names = Names(self.node)  # a few reads for the whole list, not three a row
        fill(self.list, [[short(n.id), state_text("role", n.role), names.dataset(n.space_id, n.dataset_id),
                          names.peer(n.space_id, n.peer),
                          state_text("negotiation", n.state), t("ui.yes") if n.pending else "",
                          self._until(n.id) if n.state == "FINALIZED" else "",
                          n.updated[:19].replace("T", " ")] for n in items], [n.id for n in items])
        self.split.setVisible(bool(items))
        self.empty.setVisible(not items)
        for i, n in enumerate(items):
            if n.id == keep:
                self.list.selectRow(i)
        self.show_detail()

    def show_detail(self) -> None:
        nid = selected_key(self.list)
        for b in (self.approve_b, self.reject_b, self.counter_b, self.terminate_b, self.retire_b):
            b.setEnabled(nid is not None)
        if nid is None:
            self.explain.setText("")
            self.agreement.setText("")
            fill(self.timeline, [])
            return
        n = self.node.contracts.get(nid)
        signed = self.node.contracts.agreement(nid)
        self.approve_b.setEnabled(n.pending)
        self.reject_b.setEnabled(n.pending)
        self.counter_b.setEnabled(n.pending)
        self.terminate_b.setEnabled(Event.TERMINATE in self.node.contracts.moves(nid))
        self.retire_b.setVisible(n.role == "provider")
        self.retire_b.setEnabled(n.state == "FINALIZED" and signed is not None and signed["status"] == "active")
        self.explain.setText(self.node.contracts.explain(nid, get_lang()))
        self.agreement.setText(self._validity(signed) if signed is not None and n.state == "FINALIZED" else "")
        fill(self.timeline, [[s.n, s.ts[:19].replace("T", " "), state_text("event", s.event),
                              state_text("direction", s.direction), state_text("negotiation", s.state_after), s.reason]
                             for s in self.node.contracts.timeline(nid)])

    def _until(self, nid: str) -> str:
        """The list's "valid until": the end date, "no end", or that the agreement was retired."""
        signed = self.node.contracts.agreement(nid)
        if signed is None:
            return ""
        if signed["status"] == "retired":
            return t("ui.agr.retired")
        end = expires(signed["agreement"])
        return end[:16].replace("T", " ") if end else t("ui.agr.no_end")

    def _validity(self, signed: dict) -> str:
        """An agreement in words: in force or retired, from and until when, and its terms."""
        doc = signed["agreement"]
        end = expires(doc)
        status = t(f"ui.agr.status.{signed['status']}") if signed["status"] in ("agreed", "active", "retired") \
            else signed["status"]
        return t("ui.agr.validity", status, str(doc.get("timestamp", "-"))[:16].replace("T", " "),
                 end[:16].replace("T", " ") if end else t("ui.agr.no_end"), offer_summary(doc, get_lang()))

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

    def retire(self) -> None:
        """Provider: end an agreement in force; the consumer is told, later transfers and uses are refused."""
        self._with_reason("ui.agr.retire", self.node.contracts.retire)
