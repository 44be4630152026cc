"""Applying received messages: one write transaction per batch, one savepoint per message.

A message's dedup row, its sequence bookkeeping, the built-in effects (peers, catalog cache) and
every registered handler's writes commit together or not at all. A handler that refuses a message
(ApplianceError) or fails (a bug) rolls back only its own message; a refused one is remembered
so a redelivery does not run it again, a failed one is kept in the quarantine to be tried again
by a later version. The batch goes on. Store failures (disk full, I/O)
abort the whole batch, and nothing is acknowledged to the broker, so it delivers again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from paho.mqtt.client import topic_matches_sub

from appliance.domain.sync import (
    CatalogChanged,
    DropReason,
    MessageApplied,
    Received,
    gap_tracked,
)
from appliance.errors import ApplianceError
from appliance.services.sync import catalog_cache, inbox, presence, quarantine
from appliance.services.sync.drops import RateLimitedLog
from appliance.storage.connection import map_error
from appliance.storage.database import Database

log = logging.getLogger("appliance.services.sync")

Handler = Callable[[object, Received], None]


class Handlers:
    """Registered handlers: by message type, and by MQTT filter on the relative topic."""

    def __init__(self) -> None:
        self.by_type: dict[str, list[Handler]] = {}
        self.by_topic: list[tuple[str, Handler]] = []

    def on(self, type: str, handler: Handler) -> None:  # noqa: A002
        self.by_type.setdefault(type, []).append(handler)

    def on_topic(self, pattern: str, handler: Handler) -> None:
        self.by_topic.append((pattern, handler))

    def for_message(self, msg: Received) -> list[Handler]:
        found = list(self.by_type.get(msg.type, ())) if msg.type else []
        found += [h for pattern, h in self.by_topic if topic_matches_sub(pattern, msg.topic)]
        return found


@dataclass
class Outcome:
    applied: bool = False
    drop: DropReason | None = None
    detail: str = ""
    sender: str | None = None
    kept: bool = False  # in the quarantine


@dataclass
class BatchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    gap: bool = False
    confirm: set[tuple[str, str]] = field(default_factory=set)  # (sender, stream) to confirm


class Receiver:
    def __init__(self, *, handlers: Handlers, keys: presence.KeyDirectory, db: Database,
                 sender_allowed: Callable[[str, str], bool],
                 peer_online: Callable[[object, str, str], None], ratelog: RateLimitedLog) -> None:
        self._handlers = handlers
        self._ratelog = ratelog
        self._peer_online = peer_online
        self._keys = keys
        self._db = db
        self._sender_allowed = sender_allowed

    def apply(self, conn, space_id: str, my_did: str, items: list, now: str) -> BatchResult:
        """Apply checked messages (``codec.Checked``) in order, inside the caller's transaction."""
        result = BatchResult()
        for item in items:
            events: list[object] = []
            try:
                with self._db.savepoint():  # a failing message takes back its own effects only
                    outcome = self._apply_one(conn, space_id, my_did, item, now, events, result)
                result.events.extend(events)
            except Exception as e:
                if map_error(e, self._db.path) is not None:
                    raise  # the store itself failed: give up on the batch, nothing is acknowledged
                outcome = self._refused(conn, space_id, my_did, item, now, e, result)
            result.outcomes.append(outcome)
        return result

    def _refused(self, conn, space_id: str, my_did: str, item, now: str, e: Exception, result: BatchResult) -> Outcome:
        """The message's effects were rolled back. A refusal (ApplianceError) is remembered as refused;
        a bug is kept in the quarantine with the message's bytes, to be tried again by a later version.
        Either way its seq counts as received (it arrived; asking its sender for it again would only
        bring it back)."""
        env = item.envelope
        if isinstance(e, ApplianceError):
            outcome = Outcome(drop=DropReason.REJECTED, detail=e.message("en"), sender=item.sender)
            if env is not None and not item.retained:
                inbox.remember(conn, space_id, env["id"], env["from"], env["type"], now, "rejected")
        else:
            error = quarantine.describe(e)
            self._ratelog.error(f"bug:{space_id}:{error}", "a handler failed on a %s message (%s); it is kept in "
                                "quarantine\n%s", _type_of(env), error, quarantine.frames(e))
            kept = quarantine.keep(conn, space_id, item.topic, item.payload, item.retained, now, "apply", error)
            outcome = Outcome(drop=quarantine.KEPT_AS[kept], detail=error, sender=item.sender, kept=kept != "full")
            if kept == "full" and env is not None and not item.retained:
                inbox.remember(conn, space_id, env["id"], env["from"], env["type"], now, "failed")
        if env is not None and not item.retained:
            self._note_seq(conn, space_id, my_did, item, env, result)
        return outcome

    @staticmethod
    def _note_seq(conn, space_id: str, my_did: str, item, env: dict, result: BatchResult) -> None:
        if env["seq"] > 0 and gap_tracked(item.topic, my_did):  # seq 0: unsequenced control message
            inbox_stream = item.topic.startswith("inbox/")
            if inbox.note_seq(conn, space_id, env["from"], item.stream, env["seq"], from_start=inbox_stream):
                result.gap = True
            if inbox_stream:
                result.confirm.add((env["from"], item.stream))

    def _apply_one(self, conn, space_id: str, my_did: str, item, now: str, events: list,
                   result: BatchResult) -> Outcome:
        env = item.envelope
        if env is None:
            return self._apply_clear(conn, space_id, item, now, events)
        sender = env["from"]
        if not self._sender_allowed(space_id, sender):
            return Outcome(drop=DropReason.FROM_REVOKED, detail=f"message from {sender}", sender=sender)
        if item.retained:
            verdict = inbox.state_verdict(conn, space_id, item.topic, env["id"], env["seq"], env["ts"])
            if verdict == "same":
                return Outcome()  # the retained message we already have, sent again on subscribe
            if verdict == "older":
                return Outcome(drop=DropReason.STALE, detail=f"older state on {item.topic}", sender=sender)
            inbox.save_state(conn, space_id, item.topic, sender, env["id"], env["seq"], env["ts"], now)
            self._builtin_state(conn, space_id, item, now, events)
        else:
            if not inbox.remember(conn, space_id, env["id"], sender, env["type"], now):
                return Outcome(drop=DropReason.REPLAYED, detail=f"message {env['id']} again", sender=sender)
            self._note_seq(conn, space_id, my_did, item, env, result)
        msg = Received(space_id, item.topic, env, item.body, sender, item.retained)
        for handler in self._handlers.for_message(msg):
            handler(conn, msg)
        events.append(MessageApplied(space_id, env["type"], sender, item.topic))
        return Outcome(applied=True, sender=sender)

    def _builtin_state(self, conn, space_id: str, item, now: str, events: list) -> None:
        rule, env, body = item.rule, item.envelope, item.body
        if rule.kind == "card" and isinstance(body, dict):
            keys = presence.chain_from_card(rule.owner, body)
            presence.save_card(conn, space_id, rule.owner, body, keys, now)
            self._keys.learn(rule.owner, keys)
        elif rule.kind == "status" and isinstance(body, dict) and body.get("state") in ("online", "offline"):
            presence.save_presence(conn, space_id, rule.owner, body["state"], env["ts"], now)
            if body["state"] == "online" and body.get("session") != "resumed":
                self._peer_online(conn, space_id, rule.owner)
        elif rule.kind == "catalog":
            catalog_cache.upsert(conn, space_id, rule.owner, rule.dataset, body, env["id"], env["ts"])
            events.append(CatalogChanged(space_id, rule.owner, rule.dataset, removed=False))

    def _apply_clear(self, conn, space_id: str, item, now: str, events: list) -> Outcome:
        rule = item.rule
        if not inbox.clear_state(conn, space_id, item.topic, now):
            return Outcome()
        if rule.kind == "catalog":
            catalog_cache.remove(conn, space_id, rule.owner, rule.dataset)
            events.append(CatalogChanged(space_id, rule.owner, rule.dataset, removed=True))
        elif rule.kind == "card":
            presence.forget_card(conn, space_id, rule.owner)
        msg = Received(space_id, item.topic, None, None, rule.owner, True)
        for handler in self._handlers.for_message(msg):
            handler(conn, msg)
        return Outcome(applied=True, sender=rule.owner)


def _type_of(env: dict | None) -> str:
    if env is None:
        return "cleared"
    return env["type"][:80] if isinstance(env.get("type"), str) else "untyped"
