"""What a space's link, intake and committer use of the :class:`~appliance.services.sync.service.SyncService`
that owns them. A Protocol, because the service imports them: they cannot import it back."""

from __future__ import annotations

import random
from typing import Protocol

from appliance.clock import Clock
from appliance.crypto.keys import SigningKey
from appliance.domain.sync import SyncTimers
from appliance.services.sync.drops import Counters, RateLimitedLog
from appliance.services.sync.presence import KeyDirectory
from appliance.services.sync.receiver import Receiver
from appliance.storage.database import Database


class SyncOwner(Protocol):
    db: Database
    clock: Clock
    timers: SyncTimers
    node_did: str
    keys: KeyDirectory
    ratelog: RateLimitedLog
    receiver: Receiver
    counters: Counters
    rand: random.Random

    def emit(self, event: object) -> None: ...

    def signing_key(self) -> SigningKey: ...

    def flush_outbox(self, conn) -> None: ...

    def queue_card(self, conn, space_id: str) -> bool: ...

    def send_control(self, conn, space_id: str, *, to: str, type: str, body: object) -> str: ...  # noqa: A002

    def lane_frame(self, space_id: str, frame: bytes) -> None: ...

    def dropped(self, space_id: str, reason: str, detail: str, topic: str, sender: str | None) -> None: ...
