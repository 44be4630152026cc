"""The space operator's queues: join requests (admit or reject) and listing requests (approve or reject)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QInputDialog, QLabel

from appliance.host.host import RequestsWaiting
from appliance.i18n import t
from ui.pages.base import Page, button, fill, selected_key, short, table


class OperatorPage(Page):
    key = "operator"
    watches = (RequestsWaiting, object)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.layout_.addWidget(QLabel(t("ui.op.admissions")))
        self.admissions = table([t("ui.col.id"), t("ui.op.col.name"), t("ui.op.col.org"), t("ui.col.peer"),
                                 t("ui.col.time")], "admissions", stretch=1)
        self.layout_.addWidget(self.admissions, 1)
        row = QHBoxLayout()
        row.addWidget(button("ui.op.admit", self.admit))
        row.addWidget(button("ui.op.reject", self.reject_admission, name="reject_admission"))
        row.addStretch(1)
        self.layout_.addLayout(row)
        self.layout_.addWidget(QLabel(t("ui.op.listings")))
        self.listings = table([t("ui.col.id"), t("ui.col.dataset"), t("ui.cat.col.provider"), t("ui.col.time")],
                              "listings", stretch=1)
        self.layout_.addWidget(self.listings, 1)
        row = QHBoxLayout()
        row.addWidget(button("ui.op.approve", self.approve))
        row.addWidget(button("ui.op.reject", self.reject_listing, name="reject_listing"))
        row.addStretch(1)
        self.layout_.addLayout(row)

    def refresh(self) -> None:
        op = self.node.operator
        adm = op.admissions("pending")
        fill(self.admissions, [[a.id, a.name, a.org or "-", short(a.node_did), a.requested[:19].replace("T", " ")]
                               for a in adm], [a.id for a in adm])
        lst = op.listings("pending")
        fill(self.listings, [[x.id, short(x.dataset_id, 28), short(x.provider), x.requested[:19].replace("T", " ")]
                             for x in lst], [x.id for x in lst])

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
