"""The embedded MQTT 5 broker: an in-process stand-in for mosquitto when it is not installed.

``EmbeddedBroker(document).start(host="127.0.0.1", port=0)`` returns the port; ``stop()`` closes
everything and ends its thread. See :mod:`appliance.net.broker.server` for what it implements.
"""

from appliance.net.broker.access import Access, AccessError
from appliance.net.broker.server import EmbeddedBroker

__all__ = ["Access", "AccessError", "EmbeddedBroker"]
