"""Transfers: fetch the data of an agreement in force (the consumer) or push it to the consumer (the
provider); each transfer's mode and path in words, progress bars with the rate and time left the
core's TransferProgress events carry; pause, resume, cancel; the objects received, each delivery's
manifest and receipt."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QWidget

from appliance.i18n import t
from ui.pages.base import (Page, button, dataset_name, empty_hint, fill, peer_name, selected_key, short, state_text,
                           table)

DONE = ("COMPLETED", "TERMINATED")
SPEED_COL = 6


def size_text(n: float) -> str:
    """A size in words a person reads at a glance: 512 bytes, 12.3 KB, 4.5 MB, 1.2 GB."""
    for unit, key in ((1 << 30, "ui.trx.gb"), (1 << 20, "ui.trx.mb"), (1 << 10, "ui.trx.kb")):
        if n >= unit:
            return t(key, n / unit)
    return t("ui.trx.size.b", int(n))


def duration_text(seconds: float) -> str:
    s = int(seconds + 0.5)
    if s >= 3600:
        return t("ui.trx.hours", s // 3600, s % 3600 // 60)
    if s >= 60:
        return t("ui.trx.minutes", s // 60, s % 60)
    return t("ui.trx.seconds", s)


def speed_text(event) -> str:
    """The event's rate and time left (computed in the core, appliance/services/delivery/rate.py)."""
    if event.rate <= 0:
        return ""
    if event.eta is None:
        return t("ui.trx.speed_only", size_text(event.rate))
    return t("ui.trx.speed", size_text(event.rate), duration_text(event.eta))


def how_text(mode: str, path: str | None) -> str:
    """Pull or push, direct or through the broker, in words."""
    route = ("ui.trx.path.none" if not path else "ui.trx.path.relay" if path == "relay" else "ui.trx.path.direct")
    return t("ui.trx.how", t(f"ui.trx.mode.{'push' if mode == 'push' else 'pull'}"), t(route))


class TransfersPage(Page):
    key = "transfers"
    watches = (object,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        start = QHBoxLayout()
        start.addWidget(QLabel(t("ui.tr.agreement")))
        self.agreements = QComboBox()
        self.agreements.setObjectName("agreements")
        self.agreements.setPlaceholderText(t("ui.trx.no_agreement"))
        self.agreements.currentIndexChanged.connect(self._chosen)
        start.addWidget(self.agreements, 1)
        self.start_b = button("ui.trx.fetch", self.start, name="start")
        self.start_b.setToolTip(t("ui.trx.fetch_tip"))
        self.push_b = button("ui.trx.push", self.push)
        self.push_b.setToolTip(t("ui.trx.push_tip"))
        start.addWidget(self.start_b)
        start.addWidget(self.push_b)
        self.layout_.addLayout(start)
        self.list = table([t("ui.col.id"), t("ui.col.role"), t("ui.col.dataset"), t("ui.col.state"),
                           t("ui.col.progress"), t("ui.trx.col.how"), t("ui.tr.col.rate"), t("ui.con.col.reason")],
                          "transfers", stretch=2)
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
        self.received = table([t("ui.trx.col.name"), t("ui.trx.col.size"), t("ui.col.dataset"), t("ui.col.time"),
                               t("ui.trx.col.object")], "received", stretch=0)
        self.received.itemSelectionChanged.connect(self._show_delivery)
        self.layout_.addWidget(self.received, 1)
        self.delivery = QLabel(t("ui.trx.pick_received"))
        self.delivery.setObjectName("delivery")
        self.delivery.setWordWrap(True)
        self.layout_.addWidget(self.delivery)
        self.nothing_received = empty_hint("ui.tr.nothing_received")
        self.layout_.addWidget(self.nothing_received, 1)
        self.bars: dict[str, QProgressBar] = {}
        self.speeds: dict[str, str] = {}  # the last rate and time left heard, per moving transfer
        self.roles: dict[str, str] = {}  # the agreements offered: negotiation id -> this node's role
        self._received: list = []

    def refresh(self) -> None:
        transfers = self.node.transfers.list()
        self._fill_transfers(transfers)
        self._fill_agreements(transfers)
        self._fill_received(transfers)

    def _fill_transfers(self, transfers) -> None:
        keep = selected_key(self.list)
        self.speeds = {k: v for k, v in self.speeds.items() if any(x.id == k and x.state not in DONE
                                                                   for x in transfers)}
        fill(self.list, [[short(x.id), state_text("role", x.role), dataset_name(self.node, x.space_id, x.dataset_id),
                          state_text("transfer", x.state), "", how_text(x.mode, x.path), self.speeds.get(x.id, ""),
                          x.reason or ""] for x in transfers],
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

    def _fill_agreements(self, transfers) -> None:
        """Agreements in force with nothing moving or moved yet: the consumer fetches, the provider pushes."""
        started = {x.negotiation_id for x in transfers if x.state != "TERMINATED"}
        keep = self.agreements.currentData()
        self.agreements.blockSignals(True)
        self.agreements.clear()
        self.roles = {}
        for n in self.node.contracts.list(state="FINALIZED"):
            if n.id in started or n.role not in ("consumer", "provider") or not self.node.contracts.in_force(n.id):
                continue
            label = t("ui.trx.item.fetch" if n.role == "consumer" else "ui.trx.item.push",
                      dataset_name(self.node, n.space_id, n.dataset_id), peer_name(self.node, n.space_id, n.peer))
            self.agreements.addItem(label, n.id)
            self.roles[n.id] = n.role
        if self.agreements.count():
            at = self.agreements.findData(keep)
            self.agreements.setCurrentIndex(at if at >= 0 else 0)
        self.agreements.blockSignals(False)
        self._chosen()

    def _chosen(self, *_) -> None:
        """The button for the chosen agreement: fetch (this node consumes) or push (it provides)."""
        role = self.roles.get(self.agreements.currentData() or "")
        self.push_b.setVisible(role == "provider")
        self.start_b.setVisible(role != "provider")
        self.start_b.setEnabled(role == "consumer")

    def _fill_received(self, transfers) -> None:
        """Each object received, newest delivery first and its objects in the manifest's order."""
        items = self.node.transfers.received()
        newest: dict[str, str] = {}
        for r in items:
            newest[r.transfer_id] = max(newest.get(r.transfer_id, ""), r.received)
        self._received = sorted(items, key=lambda r: (newest[r.transfer_id], r.transfer_id, -r.part), reverse=True)
        spaces = {x.id: x.space_id for x in transfers}
        keep = selected_key(self.received)
        fill(self.received, [[r.name, size_text(r.size),
                              dataset_name(self.node, spaces.get(r.transfer_id, ""), r.dataset_id),
                              r.received[:19].replace("T", " "), short(r.object_id, 16)] for r in self._received],
             [r.object_id for r in self._received])
        keep_at = 0  # the newest delivery's first object unless another was chosen: its manifest shows
        for i, r in enumerate(self._received):
            self.received.item(i, 1).setToolTip(t("ui.trx.size.b", r.size))
            keep_at = i if r.object_id == keep else keep_at
        if self._received:
            self.received.selectRow(keep_at)
        self.received.setVisible(bool(items))
        self.delivery.setVisible(bool(items))
        self.nothing_received.setVisible(not items)
        self._show_delivery()

    def _show_delivery(self) -> None:
        """The manifest and receipt of the selected object's delivery, in words."""
        oid = selected_key(self.received)
        item = next((r for r in self._received if r.object_id == oid), None)
        if item is None:
            self.delivery.setText(t("ui.trx.pick_received"))
            return
        manifest = self.node.transfers.manifest(item.transfer_id)
        receipt = self.node.transfers.receipt(item.transfer_id)
        m = manifest[0] if manifest else {}
        count, size, digest = len(m.get("objects", [m] if m else [])), size_text(m.get("size", 0)), m.get("sha256", "")
        lines = [t("ui.trx.manifest_one", size, str(digest)[:16]) if count == 1
                 else t("ui.trx.manifest", count, size, str(digest)[:16])]
        if m.get("maskingRules"):
            rules = len(m["maskingRules"])
            lines.append(t("ui.trx.masked_one") if rules == 1 else t("ui.trx.masked", rules))
        lines.append(t("ui.trx.receipt", str(receipt[0].get("received", ""))[:19].replace("T", " ")) if receipt
                     else t("ui.trx.no_receipt"))
        self.delivery.setText("\n".join(lines))

    def on_progress(self, event) -> None:
        bar = self.bars.get(event.transfer_id)
        if bar is None:
            return
        bar.setRange(0, max(1, event.chunks_total))
        bar.setValue(event.chunks_done)
        self.speeds[event.transfer_id] = speed = speed_text(event)
        for row in range(self.list.rowCount()):
            item = self.list.item(row, 0)
            if item is not None and item.data(0x0100) == event.transfer_id:
                self.list.item(row, SPEED_COL).setText(speed)

    def start(self) -> None:
        nid = self.agreements.currentData()
        if nid and self.roles.get(nid) == "consumer":
            self.act(self.node.transfers.request, nid)

    def push(self) -> None:
        nid = self.agreements.currentData()
        if nid and self.roles.get(nid) == "provider":
            self.act(self.node.transfers.push, nid)

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
