"""The embedded MQTT 5 broker: an in-process stand-in for mosquitto when it is not installed.

``EmbeddedBroker(document).start(host="127.0.0.1", port=0)`` returns the port; ``stop()`` closes
everything and ends its thread. See :mod:`appliance.net.broker.server` for what it implements.

The names below are imported on first use: the settings read :mod:`appliance.net.broker.limits`
on every start, and the server (asyncio) is needed only where a broker runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.net.broker.access import Access, AccessError
    from appliance.net.broker.server import EmbeddedBroker

__all__ = ["Access", "AccessError", "EmbeddedBroker"]

_WHERE = {"Access": "access", "AccessError": "access", "EmbeddedBroker": "server"}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
