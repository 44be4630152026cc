"""Space sync: store-and-forward messaging with the spaces this node belongs to, over MQTT 5.

``SyncService`` (wired on the Node as ``node.sync``) is the public face; the rest are its parts:
``codec`` (envelopes, sealed bodies, checks on arrival), ``outbox``, ``inbox``, ``receiver``
(applying messages exactly once), ``link`` (one space's connection thread), ``presence`` (node
card, status, key chains) and ``catalog_cache`` (the space catalog, searchable offline).
"""

from appliance.domain.sync import (
    CatalogEntry,
    DropReason,
    Peer,
    Received,
    SpaceConfig,
    SpaceStatus,
    SyncTimers,
    may_publish,
    subscriptions,
)
from appliance.services.sync.service import SyncService

__all__ = [
    "CatalogEntry",
    "DropReason",
    "Peer",
    "Received",
    "SpaceConfig",
    "SpaceStatus",
    "SyncService",
    "SyncTimers",
    "may_publish",
    "subscriptions",
]
