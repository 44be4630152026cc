"""Notices for what needs the user: approvals waiting, transfers finished, join decisions, the
operator's queues. In the system tray when there is one (closing the window may leave the node
running there), else in the window's status line."""

from __future__ import annotations

from PySide6.QtCore import QObject, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from appliance.domain.contracts import NegotiationChanged
from appliance.domain.membership import JoinRejected, SpaceJoined
from appliance.host.host import RequestsWaiting
from appliance.i18n import t
from appliance.services.delivery.records import TransferChanged


def notice_for(event: object) -> str | None:
    """What to tell the user about ``event``; None: nothing."""
    if isinstance(event, NegotiationChanged) and event.pending:
        return t("ui.notice.approval")
    if isinstance(event, TransferChanged) and event.state == "COMPLETED":
        return t("ui.notice.transfer_done" if event.role == "consumer" else "ui.notice.transfer_sent")
    if isinstance(event, SpaceJoined):
        return t("ui.join.admitted_short", event.space_id)
    if isinstance(event, JoinRejected):
        return t("ui.join.rejected_short", event.space_id)
    if isinstance(event, RequestsWaiting):
        return t("ui.notice.operator", event.admissions, event.listings)
    return None


def app_icon() -> QIcon:
    """The app's icon, drawn at each size (sharp at any scale)."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        p = QPainter(pixmap)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setBrush(QColor("#2e86c1"))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawRoundedRect(QRectF(0, 0, size, size), size * 0.2, size * 0.2)
        p.setPen(QColor("white"))
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(6, int(size * 0.42)))
        p.setFont(font)
        p.drawText(QRectF(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, "ds")
        p.end()
        icon.addPixmap(pixmap)
    return icon


class Notifier(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.shown: list[str] = []  # what was said (tests read it)
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(app_icon(), self)
            self.tray.setToolTip(t("ui.app.title"))
            menu = QMenu()
            show = QAction(t("ui.tray.show"), menu)
            show.triggered.connect(self.window.bring_back)
            quit_ = QAction(t("ui.quit"), menu)
            quit_.triggered.connect(self.window.quit_app)
            menu.addAction(show)
            menu.addAction(quit_)
            self.menu = menu
            self.tray.setContextMenu(menu)
            self.tray.activated.connect(lambda *_: self.window.bring_back())
            self.tray.show()

    def on_event(self, event: object) -> None:
        text = notice_for(event)
        if text is None:
            return
        self.shown.append(text)
        if self.tray is not None and (not self.window.isVisible() or not self.window.isActiveWindow()):
            self.tray.showMessage(t("ui.app.title"), text, app_icon(), 8000)
        self.window.status(text)

    def close(self) -> None:
        if self.tray is not None:
            self.tray.hide()
