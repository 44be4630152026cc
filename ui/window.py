"""The main window: a sidebar of pages, a status line, the idle lock and the join flow."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import (QApplication, QHBoxLayout, QInputDialog, QLabel, QLineEdit, QListWidget, QMainWindow,
                               QPushButton, QStackedWidget, QVBoxLayout, QWidget)

from appliance import i18n
from appliance.host.flows import join_and_wait, passphrase_matches
from appliance.i18n import t
from ui import prefs as prefs_mod
from ui.bridge import Bridge
from ui.dialogs import info, show_error
from ui.notify import Notifier, app_icon
from ui.pages import make_page, page_keys
from ui.tasks import run_task

JOIN_WAIT = 120.0  # seconds the app waits for the operator's decision before it says it will tell later


@dataclass
class Context:
    node: object
    host: object
    settings: object
    prefs: prefs_mod.Prefs
    bridge: Bridge
    window: MainWindow
    closed: bool = False  # the node is closing: pages read nothing more


class Pages(Sequence):
    """The window's pages in the sidebar's order. A page is built the first time it is shown or asked
    for (``pages[i]``, iterating); until then the stack holds an empty stand-in in its place."""

    def __init__(self, ctx, stack: QStackedWidget) -> None:
        self.ctx, self.stack = ctx, stack
        self.keys = page_keys(ctx)
        self._built: dict[str, QWidget] = {}
        for _ in self.keys:
            stand_in = QWidget()
            stand_in.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            stack.addWidget(stand_in)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        key = self.keys[i]
        if key not in self._built:
            self._built[key] = self._build(self.keys.index(key))
        return self._built[key]

    def _build(self, i: int) -> QWidget:
        page = make_page(self.keys[i], self.ctx)
        stand_in, current = self.stack.widget(i), self.stack.currentIndex()
        self.stack.insertWidget(i, page)
        self.stack.removeWidget(stand_in)
        stand_in.deleteLater()
        self.stack.setCurrentIndex(current)
        return page

    def built(self) -> list:
        """The pages built so far (those not built have nothing to update)."""
        return [self._built[k] for k in self.keys if k in self._built]

    def index(self, page, *_args) -> int:
        return self.keys.index(page.key)

    def by_key(self, key: str):
        return self[self.keys.index(key)]


class MainWindow(QMainWindow):
    def __init__(self, node, host, settings, prefs: prefs_mod.Prefs) -> None:
        super().__init__()
        self.setObjectName("main_window")
        self.node, self.host = node, host
        self.bridge = Bridge(node.bus, self)
        self.ctx = Context(node, host, settings, prefs, self.bridge, self)
        self.join_cancel = threading.Event()
        self.locked = False
        self.idle = QTimer(self)
        self.idle.setSingleShot(True)
        self.idle.timeout.connect(self.lock)
        self.stack = QStackedWidget()  # 0: the pages, 1: the lock screen
        self.setCentralWidget(self.stack)
        self.bridge.event.connect(self.on_event)
        self.bridge.transfer_progress.connect(self.on_progress)
        self.setWindowIcon(app_icon())
        self.notifier = Notifier(self)
        self.build()
        QApplication.instance().installEventFilter(self)
        self.fit_screen()

    # --- building (again, after a language switch) ------------------------------------------------

    def build(self) -> None:
        while self.stack.count():
            old = self.stack.widget(0)
            self.stack.removeWidget(old)
            old.deleteLater()
        self.setWindowTitle(t("ui.app.title_node", self.node.identity.name))
        body = QWidget()
        row = QHBoxLayout(body)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setFixedWidth(170)
        self.sidebar.setStyleSheet("QListWidget { font-size: 15px } QListWidget::item { padding: 8px }")
        self.pages_stack = QStackedWidget()
        self.pages = Pages(self.ctx, self.pages_stack)
        for key in self.pages.keys:
            self.sidebar.addItem(t(f"ui.page.{key}"))
        self.sidebar.currentRowChanged.connect(self._show_row)
        self.sidebar.setCurrentRow(0)
        row.addWidget(self.sidebar)
        row.addWidget(self.pages_stack, 1)
        self.stack.addWidget(body)
        self.stack.addWidget(self._lock_screen())
        self.statusBar().showMessage(t("ui.status.running"))
        self.restart_idle()

    def fit_screen(self, width: int = 1280, height: int = 800) -> None:
        """``width`` x ``height``, or as much of the screen as there is (a small or scaled screen)."""
        room = self.screen().availableGeometry()
        frame_w, frame_h = 16, 40  # what the window manager's frame takes, about
        self.resize(max(self.minimumSizeHint().width(), min(width, room.width() - frame_w)),
                    max(self.minimumSizeHint().height(), min(height, room.height() - frame_h)))

    def _show_row(self, i: int) -> None:
        if 0 <= i < len(self.pages):
            self.pages.by_key(self.pages.keys[i])  # built on its first visit
        self.pages_stack.setCurrentIndex(i)

    def page(self, key: str):
        return self.pages.by_key(key)

    def show_page(self, key: str):
        page = self.page(key)
        self.sidebar.setCurrentRow(self.pages.keys.index(key))
        return page

    def status(self, text: str) -> None:
        self.statusBar().showMessage(text, 10000)

    def apply_prefs(self, new: prefs_mod.Prefs) -> None:
        old, self.ctx.prefs = self.ctx.prefs, new
        prefs_mod.save(self.node.home, new)
        self.restart_idle()
        if new.lang != old.lang and new.lang:
            i18n.set_lang(new.lang)
            current = self.sidebar.currentRow()
            self.build()
            self.sidebar.setCurrentRow(current)
        self.status(t("ui.set.saved"))

    # --- core events ------------------------------------------------------------------------------

    def on_event(self, event: object) -> None:
        for page in self.pages.built():
            page.on_event(event)
        self.notifier.on_event(event)

    def on_progress(self, event) -> None:
        for page in self.pages.built():
            handler = getattr(page, "on_progress", None)
            if handler is not None:
                handler(event)

    # --- joining a space --------------------------------------------------------------------------

    def ask_join(self) -> None:
        dialog = QInputDialog(self)
        dialog.setObjectName("join_dialog")
        dialog.setWindowTitle(t("ui.dash.join"))
        dialog.setLabelText(t("ui.join.paste"))
        dialog.setOkButtonText(t("ui.join.send"))
        dialog.setCancelButtonText(t("ui.cancel"))
        dialog.textValueSelected.connect(lambda code: self.join(code.strip()) if code.strip() else None)
        dialog.open()

    def join(self, invitation: str) -> None:
        """Send the join request and wait (in a worker) for the operator's decision."""
        node, cancel = self.node, self.join_cancel
        self.status(t("ui.join.waiting"))
        run_task(lambda _p: join_and_wait(node, invitation, wait=JOIN_WAIT, cancel=cancel),
                 self._joined, lambda e: show_error(self, e))

    def _joined(self, outcome) -> None:
        if outcome.admitted:
            info(self, t("ui.join.admitted", outcome.space_id, outcome.grade if outcome.grade is not None else "-"))
        elif outcome.rejection is not None:
            info(self, t("ui.join.rejected", outcome.rejection))
        elif not self.join_cancel.is_set():
            info(self, t("ui.join.later"))

    # --- the idle lock ----------------------------------------------------------------------------

    def _lock_screen(self) -> QWidget:
        w = QWidget()
        w.setObjectName("lock_screen")
        v = QVBoxLayout(w)
        v.addStretch(1)
        title = QLabel(t("ui.lock.title"))
        title.setStyleSheet("font-size: 18px; font-weight: bold")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        v.addWidget(title)
        self.lock_passphrase = QLineEdit()
        self.lock_passphrase.setObjectName("lock_passphrase")
        self.lock_passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.lock_passphrase.setMaximumWidth(360)
        self.lock_passphrase.returnPressed.connect(self.unlock)
        v.addWidget(self.lock_passphrase, 0, Qt.AlignmentFlag.AlignCenter)
        self.lock_problem = QLabel()
        self.lock_problem.setObjectName("lock_problem")
        self.lock_problem.setStyleSheet("color: #c0392b")
        self.lock_problem.setAlignment(Qt.AlignmentFlag.AlignCenter)
        v.addWidget(self.lock_problem)
        b = QPushButton(t("ui.unlock.button"))
        b.setObjectName("lock_unlock")
        b.clicked.connect(self.unlock)
        v.addWidget(b, 0, Qt.AlignmentFlag.AlignCenter)
        v.addStretch(2)
        return w

    def restart_idle(self) -> None:
        minutes = self.ctx.prefs.idle_minutes
        if minutes and not self.locked:
            self.idle.start(int(minutes * 60_000))
        else:
            self.idle.stop()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.Wheel) \
                and not self.locked and self.idle.isActive():
            self.idle.start()
        return False

    def lock(self) -> None:
        """Hide everything behind the passphrase; the node keeps running."""
        self.locked = True
        self.idle.stop()
        self.lock_passphrase.clear()
        self.lock_problem.setText("")
        self.stack.setCurrentIndex(1)
        self.lock_passphrase.setFocus()

    def unlock(self) -> None:
        secret = self.lock_passphrase.text().encode("utf-8")
        if not secret:
            return
        node = self.node
        self.lock_problem.setText(t("ui.unlock.opening"))
        run_task(lambda _p: passphrase_matches(node, secret), self._unlock_checked, lambda e: show_error(self, e))

    def _unlock_checked(self, ok: bool) -> None:
        if not ok:
            from appliance.errors import WrongPassphrase

            self.lock_problem.setText(WrongPassphrase().message())
            return
        self.locked = False
        self.lock_problem.setText("")
        self.stack.setCurrentIndex(0)
        self.restart_idle()

    # --- closing ----------------------------------------------------------------------------------

    def bring_back(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def quit_app(self) -> None:
        self.shutdown()
        QApplication.instance().quit()

    def shutdown(self) -> None:
        if self.ctx.closed:
            return
        self.ctx.closed = True
        for page in self.pages.built():
            page.halt()
        self.hide()
        self.join_cancel.set()
        QApplication.instance().removeEventFilter(self)
        self.idle.stop()
        self.notifier.close()
        self.bridge.close()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.ctx.prefs.keep_in_tray and self.notifier.tray is not None and not self.ctx.closed:
            event.ignore()  # the node keeps running; the tray brings the window back or quits
            self.hide()
            self.notifier.to_tray(t("ui.tray.still_running"), 5000)
            return
        self.shutdown()
        super().closeEvent(event)
        QApplication.instance().quit()
