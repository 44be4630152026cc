"""Core events as Qt signals: the one place where the node's bus meets the Qt thread.

Bus handlers run on the core's threads (sync, transfers, the control API). A signal emitted
there reaches slots of objects living on the GUI thread through Qt's queued connection, so the
handler only emits; nothing of Qt is touched on a core thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from appliance.services.delivery.records import TransferProgress


class Bridge(QObject):
    """``event(object)`` for every core event; ``transfer_progress`` for TransferProgress."""

    event = Signal(object)
    transfer_progress = Signal(object)

    def __init__(self, bus, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._unsubscribe = bus.subscribe(self._on_event)

    def _on_event(self, event: object) -> None:  # on a core thread
        if isinstance(event, TransferProgress):
            self.transfer_progress.emit(event)
        else:
            self.event.emit(event)

    def close(self) -> None:
        self._unsubscribe()
