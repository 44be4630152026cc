"""Peers: the members of each space this node is in, with their organisation and whether they are online."""

from __future__ import annotations

from appliance.i18n import t
from ui.pages.base import Page, empty_hint, fill, short, state_text, table


class PeersPage(Page):
    key = "peers"
    watches = (object,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.list = table([t("ui.dash.col.space"), t("ui.op.col.name"), t("ui.op.col.org"),
                           t("ui.peers.col.presence"), t("ui.peers.col.seen"), t("ui.col.peer")], "peers", stretch=1)
        self.layout_.addWidget(self.list, 1)
        self.empty = empty_hint("ui.peers.empty")
        self.layout_.addWidget(self.empty, 1)

    def refresh(self) -> None:
        rows = []
        for space in self.node.sync.spaces():
            for p in self.node.sync.peers(space.space_id):
                if p.did == self.node.identity.did:
                    continue
                rows.append([space.name or space.space_id, p.name or "-", p.org or "-",
                             state_text("presence", p.presence or "unknown"),
                             (p.presence_ts or "-")[:19].replace("T", " "), short(p.did)])
        fill(self.list, rows)
        self.list.setVisible(bool(rows))
        self.empty.setVisible(not rows)
