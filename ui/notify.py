"""Notices for what needs the user: approvals waiting, transfers finished, agreements about to end,
join decisions, the operator's queues and alerts. In the system tray when there is one (closing the
window may leave the node running there), else in the window's status line.

:func:`notice_for` says which notice a core event brings (None: none); :func:`expiring` finds the
agreements in force that end soon, which the notifier checks at start and then every hour.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import lru_cache

from PySide6.QtCore import QObject, QRectF, Qt, QTimer
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from appliance.domain.contracts import NegotiationChanged
from appliance.domain.membership import JoinRejected, SpaceJoined
from appliance.errors import ApplianceError
from appliance.host.host import RequestsWaiting
from appliance.i18n import t
from appliance.operator.witness import AlertRaised
from appliance.services.delivery.payload import expires
from appliance.services.delivery.records import TransferChanged

log = logging.getLogger(__name__)

EXPIRING_WITHIN = timedelta(days=3)  # an agreement that ends sooner than this is announced
CHECK_EVERY_MS = 3_600_000  # how often agreements are looked at again
FIRST_CHECK_MS = 3_000  # after the window opens (not in the way of the launch)


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
    if isinstance(event, AlertRaised):
        kind = t(f"ui.scale.alert.{event.kind}") if event.kind in ("rewritten", "shrunk") else event.kind
        return t("ui.scale.notice.alert", event.node_did.rsplit(":", 1)[-1][:12] + "…", kind)
    return None


def expiring(node, now: datetime, within: timedelta = EXPIRING_WITHIN) -> list[tuple[object, str]]:
    """The agreements in force (``FINALIZED``, not retired) that end after ``now`` and before
    ``now + within``: (negotiation, end) pairs, soonest first."""
    soon = []
    low, high = _stamp(now), _stamp(now + within)
    for n in node.contracts.list(state="FINALIZED"):
        signed = node.contracts.agreement(n.id)
        if signed is None or signed.get("status") == "retired":
            continue
        end = expires(signed["agreement"])
        if end and low < _stamp_of(end) <= high:
            soon.append((n, end))
    return sorted(soon, key=lambda pair: _stamp_of(pair[1]))


def _stamp(when: datetime) -> float:
    return when.timestamp()


def _stamp_of(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def expiring_notice(node, negotiation, end: str) -> str:
    from ui.pages.base import dataset_name

    return t("ui.scale.notice.expiring", dataset_name(node, negotiation.space_id, negotiation.dataset_id),
             end[:16].replace("T", " "))


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    """The app's icon, drawn at each size (sharp at any scale); drawn once (about 25 ms)."""
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
        self.tray_said: list[str] = []  # what of it went to the tray
        self.told_expiring: set[str] = set()  # agreements announced already (once each)
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.attach_tray()
        self.checks = QTimer(self)
        self.checks.timeout.connect(self.check_agreements)
        self.checks.start(FIRST_CHECK_MS)  # then every CHECK_EVERY_MS

    def attach_tray(self) -> QSystemTrayIcon:
        """The icon in the system tray, with its menu (show the window, quit): made at start when the
        desktop has a tray."""
        if self.tray is not None:
            return self.tray
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
        return self.tray

    def on_event(self, event: object) -> None:
        text = notice_for(event)
        if text is not None:
            self.say(text)

    def check_agreements(self) -> None:
        """Announce, once each, the agreements in force that end within ``EXPIRING_WITHIN``."""
        self.checks.setInterval(CHECK_EVERY_MS)
        node = self.window.node
        if self.window.ctx.closed:
            return
        try:
            soon = expiring(node, node.clock.now())
        except ApplianceError:
            log.warning("could not look at the agreements in force", exc_info=True)
            return
        for n, end in soon:
            if n.id not in self.told_expiring:
                self.told_expiring.add(n.id)
                self.say(expiring_notice(node, n, end))

    def say(self, text: str) -> None:
        """In the tray when the window is hidden or not in front; in the status line as well."""
        self.shown.append(text)
        if self.tray is not None and (not self.window.isVisible() or not self.window.isActiveWindow()):
            self.to_tray(text)
        self.window.status(text)

    def to_tray(self, text: str, msecs: int = 8000) -> None:
        if self.tray is not None:
            self.tray_said.append(text)
            self.tray.showMessage(t("ui.app.title"), text, app_icon(), msecs)

    def close(self) -> None:
        self.checks.stop()
        if self.tray is not None:
            self.tray.hide()
