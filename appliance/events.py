"""A small synchronous event bus: how the core tells adapters (GUI bridge, daemon) what happened.

Events are plain frozen dataclasses from :mod:`appliance.domain.events`. Handlers run in the thread
that emitted; adapters that need another thread (Qt) hand off in their own handler. A failing
handler is logged and does not stop the others or the action that emitted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[Any], None]


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: list[tuple[type | None, Handler]] = []

    def subscribe(self, handler: Handler, event_type: type | None = None) -> Callable[[], None]:
        """Call ``handler`` for every event (or only those of ``event_type``); returns an unsubscribe function."""
        entry = (event_type, handler)
        with self._lock:
            self._handlers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._handlers:
                    self._handlers.remove(entry)

        return unsubscribe

    def emit(self, event: object) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for event_type, handler in handlers:
            if event_type is None or isinstance(event, event_type):
                try:
                    handler(event)
                except Exception:
                    log.exception("event handler %r failed on %s", handler, type(event).__name__)
