"""What every page has: the app's context, a title, a refresh that a core event can ask for."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QHeaderView, QLabel, QPushButton, QScrollArea, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from appliance.i18n import t
from ui.dialogs import show_error


class Page(QWidget):
    key = ""  # ui.page.<key> is its name in the sidebar
    watches: tuple[type, ...] = ()  # core events after which the page reads the node again

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.node = ctx.node
        self.setObjectName(f"page_{self.key}")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()  # a small or scaled screen scrolls the page instead of cutting it
        self.scroll.setObjectName("scroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to the page's controls (it scrolls to them)
        outer.addWidget(self.scroll)
        content = QWidget()
        content.setObjectName("content")
        self.scroll.setWidget(content)
        self.layout_ = QVBoxLayout(content)
        heading = QLabel(self.title())
        heading.setObjectName("heading")
        heading.setStyleSheet("font-size: 18px; font-weight: bold; padding-bottom: 4px")
        self.layout_.addWidget(heading)
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.setInterval(300)
        self._pending.timeout.connect(self.safe_refresh)

    def title(self) -> str:
        return t(f"ui.page.{self.key}")

    def on_event(self, event: object) -> None:
        if self.ctx.closed:
            return
        if self.watches and isinstance(event, self.watches) and self.isVisible():
            if not self._pending.isActive():
                self._pending.start()

    def halt(self) -> None:
        self._pending.stop()

    def safe_refresh(self) -> None:
        if self.ctx.closed:
            return
        try:
            self.refresh()
        except Exception as e:  # noqa: BLE001 - shown as a dialog (a core error) or an apology (a bug)
            show_error(self, e)

    def refresh(self) -> None:
        pass

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.safe_refresh()

    def act(self, fn, *args, then=None) -> None:
        """Do a quick core action now; its error becomes a dialog; refresh after."""
        try:
            result = fn(*args)
        except Exception as e:  # noqa: BLE001 - shown as a dialog (a core error) or an apology (a bug)
            show_error(self, e)
            return
        if then is not None:
            then(result)
        self.safe_refresh()


def button(key: str, slot, *args, name: str | None = None) -> QPushButton:
    b = QPushButton(t(key, *args))
    b.setObjectName(name or key.rsplit(".", 1)[-1])
    b.clicked.connect(lambda *_: slot())
    return b


def table(headers: list[str], name: str, stretch: int = 0) -> QTableWidget:
    """A read-only table; column ``stretch`` takes the room left (-1: the last), the others fit their text."""
    w = QTableWidget(0, len(headers))
    w.setObjectName(name)
    w.setHorizontalHeaderLabels(headers)
    w.verticalHeader().setVisible(False)
    w.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    w.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    w.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    w.setTabKeyNavigation(False)  # Tab goes on to the next control; the arrow keys move in the table
    header = w.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(stretch == -1 or stretch == len(headers) - 1)
    if 0 <= stretch < len(headers):
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    w.setAlternatingRowColors(True)
    return w


def fill(w: QTableWidget, rows: list[list[object]], keys: list[object] | None = None) -> None:
    """Put ``rows`` in the table; ``keys[i]`` is kept on row i (Qt.UserRole of column 0)."""
    w.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            item = QTableWidgetItem("" if value is None else str(value))
            if j == 0 and keys is not None:
                item.setData(Qt.ItemDataRole.UserRole, keys[i])
            w.setItem(i, j, item)


def fit_height(w: QTableWidget, max_rows: int = 6) -> None:
    """As tall as its rows (up to ``max_rows``), so a short list leaves no empty box."""
    rows = max(1, min(w.rowCount(), max_rows))
    row_height = w.rowHeight(0) if w.rowCount() else w.verticalHeader().defaultSectionSize()
    w.setFixedHeight(w.horizontalHeader().sizeHint().height() + rows * row_height + 2 * w.frameWidth() + 2)


def selected_key(w: QTableWidget):
    rows = w.selectionModel().selectedRows() if w.selectionModel() else []
    if not rows:
        return None
    item = w.item(rows[0].row(), 0)
    return item.data(Qt.ItemDataRole.UserRole) if item is not None else None


def empty_hint(key: str) -> QLabel:
    label = QLabel(t(key))
    label.setObjectName("empty_hint")
    label.setWordWrap(True)
    label.setStyleSheet("color: #666; padding: 12px")
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    return label


def short(did_or_id: str | None, n: int = 12) -> str:
    if not did_or_id:
        return "-"
    text = did_or_id.rsplit(":", 1)[-1]
    return text if len(text) <= n else text[:n] + "…"


def dataset_name(node, space_id: str, dataset_id: str) -> str:
    """A dataset's title: this node's own product, or the space catalog's entry; else its short id."""
    from appliance.errors import ApplianceError

    try:
        return node.products.get(dataset_id).title
    except ApplianceError:
        pass
    return _catalog_title(node, space_id, dataset_id)


def _catalog_title(node, space_id: str, dataset_id: str) -> str:
    from appliance.errors import ApplianceError

    try:
        entries = node.sync.catalog_entries(space_id, dataset_id)
    except ApplianceError:
        entries = []
    for e in entries:
        body = e.entry.get("entry", e.entry) if isinstance(e.entry, dict) else {}
        title = body.get("dct:title") if isinstance(body, dict) else None
        if isinstance(title, str) and title:
            return title
    return short(dataset_id, 28)


def peer_name(node, space_id: str, did: str) -> str:
    """Who ``did`` is in the space (name and organisation from its card); its short id otherwise."""
    return _peer_names(node, space_id).get(did) or short(did)


def _peer_names(node, space_id: str) -> dict[str, str]:
    from appliance.errors import ApplianceError

    try:
        peers = node.sync.peers(space_id)
    except ApplianceError:
        peers = []
    return {p.did: t("ui.pr.listing_in", p.name, p.org) if p.org else p.name  # "name (org)"
            for p in peers if p.name}


class Names:
    """:func:`dataset_name` and :func:`peer_name` for the rows of a list: this node's products are
    read once, each space's peers once and each other dataset's catalog entries once, not per row."""

    def __init__(self, node) -> None:
        self.node = node
        self._products: dict[str, str] | None = None
        self._datasets: dict[tuple[str, str], str] = {}
        self._peers: dict[str, dict[str, str]] = {}

    def dataset(self, space_id: str, dataset_id: str) -> str:
        if self._products is None:
            self._products = {p.id: p.title for p in self.node.products.list()}
        if dataset_id in self._products:
            return self._products[dataset_id]
        key = (space_id, dataset_id)
        if key not in self._datasets:
            self._datasets[key] = _catalog_title(self.node, space_id, dataset_id)
        return self._datasets[key]

    def peer(self, space_id: str, did: str) -> str:
        if space_id not in self._peers:
            self._peers[space_id] = _peer_names(self.node, space_id)
        return self._peers[space_id].get(did) or short(did)


def state_text(prefix: str, value: str) -> str:
    """A state name in the user's language (``ui.state.<prefix>.<value>``), the value itself when unknown."""
    text = t(f"ui.state.{prefix}.{value}")
    return value if text == f"ui.state.{prefix}.{value}" else text
