"""The space operator's page: join requests (admit or reject), listing requests (approve or reject)
and the members (revoke, change a grade: ui/pages/operator_members.py)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QInputDialog, QLabel, QVBoxLayout, QWidget

from appliance.host.host import RequestsWaiting
from appliance.i18n import t
from ui.pages.base import Page, button, empty_hint, fill, fit_height, selected_key, short, table
from ui.pages.operator_members import MembersSection


def queue(heading: str, tbl, buttons, hint: str) -> tuple[QWidget, QWidget, QLabel]:
    """(box, the table with its buttons, the hint shown when the queue is empty)."""
    box = QWidget()
    v = QVBoxLayout(box)
    v.setContentsMargins(0, 0, 0, 0)
    v.addWidget(QLabel(heading))
    body = QWidget()
    bv = QVBoxLayout(body)
    bv.setContentsMargins(0, 0, 0, 0)
    bv.addWidget(tbl)
    row = QHBoxLayout()
    for b in buttons:
        row.addWidget(b)
    row.addStretch(1)
    bv.addLayout(row)
    v.addWidget(body)
    empty = empty_hint(hint)
    v.addWidget(empty)
    return box, body, empty


class OperatorPage(Page):
    key = "operator"
    watches = (RequestsWaiting, object)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.admissions = table([t("ui.col.id"), t("ui.op.col.name"), t("ui.op.col.org"), t("ui.col.peer"),
                                 t("ui.col.time")], "admissions", stretch=1)
        box, self.admissions_body, self.no_admissions = queue(
            t("ui.op.admissions"), self.admissions,
            [button("ui.op.admit", self.admit), button("ui.op.reject", self.reject_admission, name="reject_admission")],
            "ui.op.no_admissions")
        self.layout_.addWidget(box)
        self.listings = table([t("ui.col.id"), t("ui.col.dataset"), t("ui.cat.col.provider"), t("ui.col.time")],
                              "listings", stretch=1)
        box, self.listings_body, self.no_listings = queue(
            t("ui.op.listings"), self.listings,
            [button("ui.op.approve", self.approve), button("ui.op.reject", self.reject_listing, name="reject_listing")],
            "ui.op.no_listings")
        self.layout_.addWidget(box)
        self.members = MembersSection(self)
        self.layout_.addWidget(self.members)
        self.layout_.addStretch(1)

    def refresh(self) -> None:
        op = self.node.operator
        adm = op.admissions("pending")
        fill(self.admissions, [[a.id, a.name, a.org or "-", short(a.node_did), a.requested[:19].replace("T", " ")]
                               for a in adm], [a.id for a in adm])
        lst = op.listings("pending")
        fill(self.listings, [[x.id, self._title(x), short(x.provider), x.requested[:19].replace("T", " ")]
                             for x in lst], [x.id for x in lst])
        for body, empty, rows in ((self.admissions_body, self.no_admissions, adm),
                                  (self.listings_body, self.no_listings, lst)):
            body.setVisible(bool(rows))
            empty.setVisible(not rows)
        fit_height(self.admissions)
        fit_height(self.listings)
        self.members.refresh()

    @staticmethod
    def _title(request) -> str:
        entry = request.entry if isinstance(request.entry, dict) else {}
        title = entry.get("dct:title")
        return title if isinstance(title, str) and title else short(request.dataset_id, 28)

    def admit(self) -> None:
        aid = selected_key(self.admissions)
        if aid is not None:
            self.act(self.node.operator.admit, aid)

    def approve(self) -> None:
        rid = selected_key(self.listings)
        if rid is not None:
            self.act(self.node.operator.approve_listing, rid)

    def _reason(self, fn, key) -> None:
        if key is None:
            return
        dialog = QInputDialog(self)
        dialog.setObjectName("reason_dialog")
        dialog.setWindowTitle(t("ui.op.reject"))
        dialog.setLabelText(t("ui.con.reason"))
        dialog.setOkButtonText(t("ui.ok"))
        dialog.setCancelButtonText(t("ui.cancel"))
        dialog.textValueSelected.connect(lambda text: self.act(fn, key, text.strip()) if text.strip() else None)
        dialog.open()

    def reject_admission(self) -> None:
        self._reason(self.node.operator.reject, selected_key(self.admissions))

    def reject_listing(self) -> None:
        self._reason(self.node.operator.reject_listing, selected_key(self.listings))
