"""Lists that never load at once: a table model that reads a page of rows from a core query when the
view needs them (``canFetchMore``/``fetchMore``: the view asks as its last row scrolls into sight).

The core query pages by key (keyset paging: "the ``limit`` rows after this one"), so a page costs the
same at row 10 and at row 9,990, and filtering is the query's job, never the model's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

PAGE = 100

Index = QModelIndex | QPersistentModelIndex


class PagedModel(QAbstractTableModel):
    """Rows of ``fetch(after, limit)`` (``after``: the key of the last row held, None for the first page),
    shown as ``cells(row)``; ``key(row)`` is what selection hands back (``Qt.UserRole`` of column 0)."""

    def __init__(self, headers: Sequence[str], fetch: Callable[[Any, int], list], cells: Callable[[Any], list],
                 key: Callable[[Any], Any], page: int = PAGE) -> None:
        super().__init__()
        self.headers = list(headers)
        self._fetch, self._cells, self._key, self.page = fetch, cells, key, page
        self.rows: list = []
        self._shown: list[list[str]] = []
        self.exhausted = True

    # --- loading ---------------------------------------------------------------------------------

    def reload(self) -> None:
        """Forget what is held and read the first page again."""
        self.beginResetModel()
        self.rows, self._shown, self.exhausted = [], [], False
        self._append(self._fetch(None, self.page), reset=True)
        self.endResetModel()

    def _append(self, new: list, reset: bool = False) -> None:
        if len(new) < self.page:
            self.exhausted = True
        if not new:
            return
        if not reset:
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(new) - 1)
        self.rows.extend(new)
        self._shown.extend([("" if v is None else str(v)) for v in self._cells(r)] for r in new)
        if not reset:
            self.endInsertRows()

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008, N802 - Qt's signature
        return not parent.isValid() and not self.exhausted

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008, N802 - Qt's signature
        if parent.isValid() or self.exhausted:
            return
        self._append(self._fetch(self._key(self.rows[-1]) if self.rows else None, self.page))

    def prepend(self, new: list) -> None:
        """Put rows that are newer than the first one held at the top (the view keeps its place)."""
        if not new:
            return
        self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
        self.rows[:0] = new
        self._shown[:0] = [[("" if v is None else str(v)) for v in self._cells(r)] for r in new]
        self.endInsertRows()

    # --- reading ---------------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt's signature
        return 0 if parent.isValid() else len(self.headers)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._shown[index.row()][index.column()]
        if role == Qt.ItemDataRole.UserRole and index.column() == 0:
            return self._key(self.rows[index.row()])
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt's name
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.headers[section]
        return None

    def text(self, row: int, column: int) -> str:
        return self._shown[row][column]

    def row_of(self, key: Any) -> int:
        """The row holding ``key`` among those loaded; -1 if it is not loaded."""
        return next((i for i, r in enumerate(self.rows) if self._key(r) == key), -1)


class PagedView(QTableView):
    """Tabbing into the list selects its current row (the first at first), so the keyboard alone
    opens a row; then the arrow keys move the selection."""

    def focusInEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().focusInEvent(event)
        model = self.model()
        if model is not None and model.rowCount() and not self.selectionModel().hasSelection():
            self.selectRow(max(0, self.currentIndex().row()))


def paged_table(model: PagedModel, name: str, stretch: int = 0) -> QTableView:
    """A read-only view over ``model`` that looks like :func:`ui.pages.base.table`. Columns are sized
    once from the first page (sizing to every row's text would read them all), then the user's."""
    view = PagedView()
    view.setObjectName(name)
    view.setModel(model)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.setTabKeyNavigation(False)  # Tab leaves the list for the next control; the arrows move in it
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(stretch == -1 or stretch == len(model.headers) - 1)
    if 0 <= stretch < len(model.headers):
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    model.modelReset.connect(lambda: fit_columns(view))
    return view


def fit_columns(view: QTableView, cap: int = 360) -> None:
    """Size the columns that are not stretched to their header and first page (at most ``cap`` px)."""
    header = view.horizontalHeader()
    for column in range(header.count()):
        if header.sectionResizeMode(column) != QHeaderView.ResizeMode.Stretch:
            view.resizeColumnToContents(column)
            header.resizeSection(column, min(cap, header.sectionSize(column)))


def selected_key(view: QTableView) -> Any:
    rows = view.selectionModel().selectedRows() if view.selectionModel() else []
    return rows[0].data(Qt.ItemDataRole.UserRole) if rows else None
