"""Transfers: progress bars fed by TransferProgress events; start, pause, resume, cancel; data received."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QWidget

from appliance.i18n import t
from ui.pages.base import Page, button, dataset_name, empty_hint, fill, selected_key, short, state_text, table

DONE = ("COMPLETED", "TERMINATED")


class TransfersPage(Page):
    key = "transfers"
    watches = (object,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        start = QHBoxLayout()
        start.addWidget(QLabel(t("ui.tr.agreement")))
        self.agreements = QComboBox()
        self.agreements.setObjectName("agreements")
        self.agreements.setPlaceholderText(t("ui.tr.no_agreement"))
        start.addWidget(self.agreements, 1)
        self.start_b = button("ui.tr.start", self.start)
        start.addWidget(self.start_b)
        self.layout_.addLayout(start)
        self.list = table([t("ui.col.id"), t("ui.col.role"), t("ui.col.dataset"), t("ui.col.state"),
                           t("ui.col.progress"), t("ui.tr.col.rate"), t("ui.con.col.reason")], "transfers", stretch=2)
        self.layout_.addWidget(self.list, 2)
        self.empty = empty_hint("ui.tr.empty")
        self.layout_.addWidget(self.empty, 1)
        self.controls = QWidget()
        row = QHBoxLayout(self.controls)
        row.setContentsMargins(0, 0, 0, 0)
        for key, slot in (("ui.tr.pause", self.pause), ("ui.tr.resume", self.resume), ("ui.tr.cancel", self.cancel)):
            row.addWidget(button(key, slot))
        row.addStretch(1)
        self.layout_.addWidget(self.controls)
        self.layout_.addWidget(QLabel(t("ui.tr.received")))
        self.received = table([t("ui.tr.col.object"), t("ui.col.dataset"), t("ui.tr.col.size"),
                               t("ui.col.time")], "received", stretch=1)
        self.layout_.addWidget(self.received, 1)
        self.nothing_received = empty_hint("ui.tr.nothing_received")
        self.layout_.addWidget(self.nothing_received, 1)
        self.bars: dict[str, QProgressBar] = {}
        self.rates: dict[str, tuple[float, int]] = {}

    def refresh(self) -> None:
        transfers = self.node.transfers.list()
        keep = selected_key(self.list)
        fill(self.list, [[short(x.id), state_text("role", x.role), dataset_name(self.node, x.space_id, x.dataset_id),
                          state_text("transfer", x.state), "", "", x.reason or ""] for x in transfers],
             [x.id for x in transfers])
        self.bars = {}
        for i, x in enumerate(transfers):
            bar = QProgressBar()
            bar.setRange(0, max(1, x.chunks_total or 1))
            bar.setValue(x.chunks_total if x.state == "COMPLETED" and x.chunks_total else x.chunks_done)
            self.list.setCellWidget(i, 4, bar)
            self.bars[x.id] = bar
            if x.id == keep:
                self.list.selectRow(i)
        self.list.setVisible(bool(transfers))
        self.controls.setVisible(bool(transfers))
        self.empty.setVisible(not transfers)
        started = {x.negotiation_id for x in transfers if x.state != "TERMINATED"}
        self.agreements.clear()
        for n in self.node.contracts.list(state="FINALIZED"):
            if n.role == "consumer" and n.id not in started:
                self.agreements.addItem(f"{dataset_name(self.node, n.space_id, n.dataset_id)} · {short(n.peer)}", n.id)
        if self.agreements.count():
            self.agreements.setCurrentIndex(0)
        self.start_b.setEnabled(self.agreements.count() > 0)
        received = self.node.transfers.received()
        spaces = {x.id: x.space_id for x in transfers}
        fill(self.received, [[short(r.object_id, 16),
                              dataset_name(self.node, spaces.get(r.transfer_id, ""), r.dataset_id), r.size,
                              r.received[:19].replace("T", " ")] for r in received])
        self.received.setVisible(bool(received))
        self.nothing_received.setVisible(not received)

    def on_progress(self, event) -> None:
        bar = self.bars.get(event.transfer_id)
        if bar is None:
            return
        bar.setRange(0, max(1, event.chunks_total))
        bar.setValue(event.chunks_done)
        now = time.monotonic()
        last = self.rates.get(event.transfer_id)
        self.rates[event.transfer_id] = (now, event.bytes_done)
        if last and now > last[0]:
            rate = (event.bytes_done - last[1]) / (now - last[0])
            left = (event.bytes_total - event.bytes_done) / rate if rate > 0 else 0
            for row in range(self.list.rowCount()):
                item = self.list.item(row, 0)
                if item is not None and item.data(0x0100) == event.transfer_id:
                    self.list.item(row, 5).setText(t("ui.tr.rate", rate / 1024, int(left)))

    def start(self) -> None:
        nid = self.agreements.currentData()
        if nid:
            self.act(self.node.transfers.request, nid)

    def pause(self) -> None:
        tid = selected_key(self.list)
        if tid:
            self.act(self.node.transfers.pause, tid)

    def resume(self) -> None:
        tid = selected_key(self.list)
        if tid:
            self.act(self.node.transfers.resume, tid)

    def cancel(self) -> None:
        tid = selected_key(self.list)
        if tid:
            self.act(self.node.transfers.cancel, tid)
