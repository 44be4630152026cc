"""Catalog: what the other members of a space offer; search it, read an offer's terms in plain
words, and request the product on those terms (a negotiation starts)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit

from ui import offers as odrl_text
from appliance.i18n import t
from ui.pages.base import Page, button, empty_hint, fill, peer_name, selected_key, short, table


def entry_title(entry: dict) -> str:
    entry = entry.get("entry", entry) if isinstance(entry.get("entry"), dict) else entry  # a listing wraps it
    title = entry.get("dct:title") or entry.get("title") or ""
    if isinstance(title, dict):
        title = title.get("@value", "")
    if isinstance(title, list):
        title = next((x.get("@value", "") if isinstance(x, dict) else str(x) for x in title), "")
    return str(title)


class CatalogPage(Page):
    key = "catalog"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        row = QHBoxLayout()
        row.addWidget(QLabel(t("ui.pr.space")))
        self.space = QComboBox()
        self.space.setObjectName("space")
        self.space.currentIndexChanged.connect(lambda *_: self.search_now())
        row.addWidget(self.space, 1)
        self.query = QLineEdit()
        self.query.setObjectName("query")
        self.query.setPlaceholderText(t("ui.cat.search"))
        self.query.returnPressed.connect(self.search_now)
        row.addWidget(self.query, 2)
        row.addWidget(button("ui.cat.search_button", self.search_now))
        self.layout_.addLayout(row)
        self.results = table([t("ui.pr.col.title"), t("ui.col.dataset"), t("ui.cat.col.provider"),
                              t("ui.col.updated")], "results")
        self.results.itemSelectionChanged.connect(self.show_offers)
        self.layout_.addWidget(self.results, 1)
        self.empty = empty_hint("ui.cat.empty")
        self.layout_.addWidget(self.empty, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel(t("ui.cat.offer")))
        self.offer = QComboBox()
        self.offer.setObjectName("offer")
        self.offer.setPlaceholderText(t("ui.cat.choose_first"))
        self.offer.currentIndexChanged.connect(self.show_terms)
        bottom.addWidget(self.offer, 1)
        bottom.addWidget(button("ui.cat.request", self.request))
        self.layout_.addLayout(bottom)
        self.terms = QLabel()
        self.terms.setObjectName("terms")
        self.terms.setWordWrap(True)
        self.terms.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.layout_.addWidget(self.terms)
        self.entries: dict = {}

    def refresh(self) -> None:
        keep = self.space.currentData()
        self.space.blockSignals(True)
        self.space.clear()
        for s in self.node.sync.spaces():
            self.space.addItem(s.name or s.space_id, s.space_id)
        i = self.space.findData(keep)
        self.space.setCurrentIndex(i if i >= 0 else 0)
        self.space.blockSignals(False)
        self.search_now()

    def search_now(self) -> None:
        space = self.space.currentData()
        entries = self.node.sync.catalog(space, self.query.text().strip() or None) if space else []
        mine = self.node.identity.did
        entries = [e for e in entries if e.provider != mine]
        self.entries = {(e.space_id, e.dataset_id): e for e in entries}
        fill(self.results, [[entry_title(e.entry), short(e.dataset_id, 28),
                             peer_name(self.node, e.space_id, e.provider), e.updated[:19].replace("T", " ")]
                            for e in entries],
             [(e.space_id, e.dataset_id) for e in entries])
        self.results.setVisible(bool(entries))
        self.empty.setText(t("ui.cat.empty") if space else t("ui.cat.no_space"))
        self.empty.setVisible(not entries)
        self.show_offers()

    def show_offers(self) -> None:
        self.offer.clear()
        entry = self.entries.get(selected_key(self.results))
        if entry is None:
            self.terms.setText("")
            return
        for i, offer in enumerate(odrl_text.offers_of(entry.entry, entry.dataset_id), 1):
            self.offer.addItem(t("ui.cat.offer_n", i, short(offer["@id"], 32)), offer)
        if self.offer.count():
            self.offer.setCurrentIndex(0)
        self.show_terms()

    def show_terms(self) -> None:
        offer = self.offer.currentData()
        self.terms.setText(odrl_text.summary(offer) if offer else "")

    def request(self) -> None:
        key, offer = selected_key(self.results), self.offer.currentData()
        if key and offer:
            space, dataset = key
            self.act(lambda: self.node.contracts.request(space, dataset, offer_id=offer["@id"]),
                     then=lambda nid: (self.ctx.window.status(t("ui.cat.requested", short(nid))),
                                       self.ctx.window.show_page("contracts")))
