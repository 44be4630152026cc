"""Taking in what arrives on one space: check each message, apply the batch in one transaction,
and never let a single message stop the link.

Every message of a batch ends in exactly one of three ways, all decided before the batch is
acknowledged to the broker: applied; dropped with a counted reason (junk, forgeries, replays,
refusals); or, when checking or applying it raised an unexpected exception (a bug), kept in the
quarantine (``quarantine.py``) in the same transaction. Only a failing store aborts a batch: then
nothing is acknowledged and the broker delivers it all again later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from appliance.clock import rfc3339
from appliance.domain.sync import DropReason, SpaceConfig, absolute, relative
from appliance.services.sync import quarantine
from appliance.services.sync.codec import Checked, Drop, Inspector
from appliance.services.sync.owner import SyncOwner
from appliance.services.sync.receiver import BatchResult

log = logging.getLogger("appliance.services.sync")


@dataclass(frozen=True)
class Arrival:
    topic: str  # the full MQTT topic
    payload: bytes
    retained: bool
    received: datetime  # when it reached this node (a retried message keeps its first arrival)
    kept: int | None = None  # its quarantine row, when it is being retried


@dataclass
class Taken:
    result: BatchResult | None = None  # None: nothing needed the store
    drops: list[tuple[str, str, str | None, str]] = field(default_factory=list)  # reason, detail, sender, topic
    applied: int = 0
    released: int = 0  # retried quarantine rows that are now applied or dropped for good


def arrivals_of(rows: list[quarantine.Quarantined]) -> list[Arrival]:
    """Quarantined messages as they first arrived (their freshness is judged at that time)."""
    return [Arrival(absolute(r.space_id, r.topic), r.payload, r.retained, datetime.fromisoformat(r.received), r.id)
            for r in rows]


def inspector(svc, config: SpaceConfig) -> Inspector:
    t = svc.timers
    return Inspector(space_id=config.space_id, my_did=svc.node_did, operator_did=config.operator_did,
                     key=svc.signing_key, resolve_key=svc.keys.resolve, dedup_window=t.dedup_window,
                     max_future_skew=t.max_future_skew, max_size=t.max_message)


class Intake:
    def __init__(self, svc: SyncOwner, config: SpaceConfig) -> None:
        self.svc = svc
        self.space_id = config.space_id
        self._inspector = inspector(svc, config)

    def take(self, arrivals: list[Arrival]) -> Taken:
        """Check and apply ``arrivals`` in order. Raises ApplianceError only when the store failed."""
        svc, taken = self.svc, Taken()
        checked: list[Checked] = []
        retried: list[int | None] = []  # each checked message's quarantine row, if it was kept
        failed: list[tuple[str, Arrival, str]] = []
        dropped: list[int | None] = []
        for a in arrivals:
            topic = relative(self.space_id, a.topic)
            try:
                if topic is None:
                    raise Drop(DropReason.WRONG_SPACE, f"topic {a.topic[:120]!r}")
                item = self._inspector.inspect(topic, a.payload, a.retained, a.received)
            except Drop as d:
                taken.drops.append((str(d.reason), d.detail, d.sender, topic or a.topic))
                dropped.append(a.kept)
                continue
            except Exception as e:  # noqa: BLE001 - a bug in the checks: keep the message, go on with the others
                failed.append((topic or a.topic, a, quarantine.describe(e)))
                continue
            if item is None:
                dropped.append(a.kept)
            else:
                checked.append(item)
                retried.append(a.kept)
        released = [r for r in dropped if r is not None]
        if not (checked or failed or released):
            return taken
        now = rfc3339(svc.clock.now())

        def work(c) -> BatchResult:
            result = svc.receiver.apply(c, self.space_id, svc.node_did, checked, now) if checked else BatchResult()
            for topic, a, error in failed:
                kept = quarantine.keep(c, self.space_id, topic, a.payload, a.retained, rfc3339(a.received),
                                       "inspect", error)
                taken.drops.append((str(quarantine.KEPT_AS[kept]), error, None, topic))
            for row, outcome in zip(retried, result.outcomes, strict=True):
                if row is not None and not outcome.kept:
                    released.append(row)
            for row in released:
                quarantine.remove(c, row)
            if checked:
                c.execute("UPDATE sync_space SET last_sync = ? WHERE space_id = ?", (now, self.space_id))
            return result

        taken.result = result = svc.db.write(work)
        taken.released = len(released)
        for item, outcome in zip(checked, result.outcomes, strict=True):
            if outcome.applied:
                taken.applied += 1
            elif outcome.drop is not None:
                taken.drops.append((str(outcome.drop), outcome.detail, outcome.sender, item.topic))
        for topic, _a, error in failed:
            svc.ratelog.error(f"bug:{self.space_id}:{error}", "space %s: checking a message on %s failed (%s); "
                              "it is kept in quarantine", self.space_id, topic[:160], error)
        return taken

    def report(self, taken: Taken) -> None:
        """Count and announce what :meth:`take` did (after its transaction committed)."""
        svc = self.svc
        if taken.applied:
            svc.counters.add_received(self.space_id, taken.applied)
        if taken.result is not None:
            for event in taken.result.events:
                svc.emit(event)
        for reason, detail, sender, topic in taken.drops:
            svc.dropped(self.space_id, reason, detail, topic, sender)
