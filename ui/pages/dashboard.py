"""Dashboard: the node at a glance, and per space its connection, sync, queue and peers."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout

from appliance.i18n import t
from ui.join_dialog import ask_join
from ui.pages.base import Page, button, dataset_name, empty_hint, fill, fit_height, short, state_text, table


def card(title: str, name: str) -> tuple[QFrame, QLabel]:
    frame = QFrame()
    frame.setFrameShape(QFrame.Shape.StyledPanel)
    frame.setStyleSheet("QFrame { background: #f4f6f8; border-radius: 6px }")
    layout = QVBoxLayout(frame)
    caption = QLabel(title)
    caption.setStyleSheet("color: #555")
    value = QLabel("-")
    value.setObjectName(name)
    value.setStyleSheet("font-size: 20px; font-weight: bold")
    layout.addWidget(caption)
    layout.addWidget(value)
    return frame, value


class DashboardPage(Page):
    key = "dashboard"
    watches = (object,)  # any event may change a figure; refreshes are bunched

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.who = QLabel()
        self.who.setObjectName("who")
        self.who.setWordWrap(True)
        self.layout_.addWidget(self.who)
        grid = QGridLayout()
        self.values = {}
        for i, name in enumerate(("spaces", "approvals", "transfers", "evidence", "checkpoint", "alerts")):
            frame, value = card(t(f"ui.dash.{name}"), name)
            self.values[name] = value
            grid.addWidget(frame, i // 3, i % 3)
        self.layout_.addLayout(grid)
        self.layout_.addWidget(QLabel(t("ui.dash.per_space")))
        self.spaces = table([t("ui.dash.col.space"), t("ui.dash.col.membership"), t("ui.dash.col.state"),
                             t("ui.dash.col.queued"), t("ui.dash.col.peers"), t("ui.dash.col.last_sync")], "spaces")
        self.layout_.addWidget(self.spaces)
        self.no_space = empty_hint("ui.dash.no_space")
        self.layout_.addWidget(self.no_space)
        self.layout_.addWidget(QLabel(t("ui.dash.recent")))
        self.recent = table([t("ui.col.id"), t("ui.col.role"), t("ui.col.dataset"), t("ui.col.state"),
                             t("ui.col.progress")], "recent", stretch=2)
        self.layout_.addWidget(self.recent)
        self.no_transfers = empty_hint("ui.dash.no_transfers")
        self.layout_.addWidget(self.no_transfers)
        row = QHBoxLayout()
        row.addWidget(button("ui.dash.join", lambda: ask_join(self.ctx.window)))
        row.addStretch(1)
        self.layout_.addLayout(row)
        self.layout_.addStretch(1)

    def refresh(self) -> None:
        node = self.node
        st = node.status()
        self.who.setText(t("ui.dash.who", st.name, st.org or "-", st.did))
        spaces = node.sync.status()
        self.values["spaces"].setText(t("ui.dash.spaces_value", sum(s.connected for s in spaces), len(spaces)))
        self.values["approvals"].setText(str(len(node.contracts.pending())))
        transfers = node.transfers.list()
        active = [x for x in transfers if x.state not in ("COMPLETED", "TERMINATED")]
        self.values["transfers"].setText(t("ui.dash.transfers_value", len(active), len(transfers)))
        self.values["evidence"].setText(str(st.evidence_entries))
        self.values["checkpoint"].setText(
            t("ui.dash.checkpoint_value", st.checkpoint_size, (st.checkpoint_time or "")[:16].replace("T", " "))
            if st.checkpoint_size is not None else t("ui.dash.none"))
        alerts = 0
        if node.operator.is_operator:
            alerts = len(node.operator.admissions("pending")) + len(node.operator.listings("pending"))
        alerts += sum(s.quarantined for s in spaces)
        self.values["alerts"].setText(str(alerts))
        rows = []
        for s in spaces:
            peers = len(node.sync.peers(s.space_id))
            rows.append([s.name or s.space_id, state_text("membership", s.membership), state_text("link", s.state),
                         s.queued, peers, (s.last_sync or "-")[:19].replace("T", " ")])
        fill(self.spaces, rows)
        fit_height(self.spaces)
        self.spaces.setVisible(bool(rows))
        self.no_space.setVisible(not rows)
        fill(self.recent, [[short(x.id), state_text("role", x.role), dataset_name(node, x.space_id, x.dataset_id),
                            state_text("transfer", x.state),
                            f"{x.chunks_done}/{x.chunks_total}" if x.chunks_total else "-"] for x in transfers[:5]])
        fit_height(self.recent, 5)
        self.recent.setVisible(bool(transfers))
        self.no_transfers.setVisible(not transfers)
