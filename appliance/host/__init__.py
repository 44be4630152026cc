"""The running node: one host for the daemon and the desktop app, and its local control API."""

from appliance.host.client import ControlClient
from appliance.host.host import NodeHost, RequestsWaiting

__all__ = ["ControlClient", "NodeHost", "RequestsWaiting"]
