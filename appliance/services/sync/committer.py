"""Marking acknowledged outbox rows sent, off the link's thread."""

from __future__ import annotations

import logging
import threading

from appliance.clock import rfc3339
from appliance.domain.sync import MessagesSent
from appliance.errors import ApplianceError
from appliance.services.sync import outbox
from appliance.services.sync.owner import SyncOwner

log = logging.getLogger("appliance.services.sync")


class Committer:
    """Marks acknowledged outbox rows sent, in its own thread, so the link keeps the window full
    while the transaction commits. Marking late is harmless: at worst a row is sent again after a
    crash, and receivers drop the duplicate by its id."""

    def __init__(self, svc: SyncOwner, space_id: str) -> None:
        self._svc = svc
        self._space_id = space_id
        self._cond = threading.Condition()
        self._pending: list[tuple[list[int], list[tuple[int, str]], bool]] = []
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"dsnode-sync-{space_id}-commit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, acked: list[int], refused: list[tuple[int, str]], drained: bool) -> None:
        with self._cond:
            self._pending.append((acked, refused, drained))
            self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return not self._pending and not self._busy

    def wait(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: not self._pending and not self._busy)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping)
                if not self._pending:
                    return
                batch, self._pending, self._busy = self._pending, [], True
            try:
                self._commit(batch)
            except Exception as e:  # noqa: BLE001 - the store failed: these rows go again later, receivers dedup
                log.warning("space %s: could not mark messages sent (%s)", self._space_id,
                            e.message("en") if isinstance(e, ApplianceError) else type(e).__name__)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _commit(self, batch) -> None:
        svc, space_id = self._svc, self._space_id
        acked = [i for a, _, _ in batch for i in a]
        refused = [r for _, rs, _ in batch for r in rs]
        drained = batch[-1][2]
        ts = rfc3339(svc.clock.now())

        def work(c) -> None:
            outbox.mark_sent(c, acked, ts)
            outbox.mark_refused(c, refused, ts)
            if drained:
                c.execute("UPDATE sync_space SET last_sync = ? WHERE space_id = ?", (ts, space_id))

        svc.db.write(work, durable=False)  # lost in a power cut, the rows are published again
        svc.counters.add_sent(space_id, len(acked))
        svc.emit(MessagesSent(space_id, len(acked), len(refused)))
