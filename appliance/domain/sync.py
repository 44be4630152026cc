"""Space sync, as data: space settings, the topic rules, the connection state table, drop reasons,
sequence-gap bookkeeping and the events the sync service emits. No I/O here.

Topics are written relative to ``tds/v1/{space}/`` (see ``docs/protocol.md``)::

    node/{did}/card           retained  signed node card
    node/{did}/status         retained  online / offline (the offline one is the MQTT Will)
    catalog/{did}/{dataset}   retained  signed catalog entry; empty payload = delisted
    evidence/{did}            retained  latest signed checkpoint
    inbox/{did}                         direct messages to did (sealed); also binary lane frames
                                        (a payload starting with LANE_PREFIX: delivery chunks)
    operator/...                        published by the space operator
    operator/join/{token}               a joining node's request (join account only)
    operator/join/{token}/reply         the operator's answer to it
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from appliance.domain.machine import Table

TOPIC_ROOT = "tds/v1"
SPACE_ID_RE = re.compile(r"[a-z0-9-]{3,64}", re.ASCII)
JOIN_USERNAME_PREFIX = "join-"
LANE_PREFIX = b"\x00"
"""An inbox payload starting with this byte is a binary lane frame (services/delivery/lane.py), not a
signed envelope (those are JSON objects): the link hands it to the lane's handler, never to intake."""

STATUSES = ("joining", "member", "revoked", "left", "operator")
CONNECTING_STATUSES = ("joining", "member", "operator")
"""Spaces with one of these statuses get a connection when sync runs."""


class Action(StrEnum):
    """Evidence actions of the sync feature."""

    SPACE_ADDED = "space.added"
    SPACE_UPDATED = "space.updated"


@dataclass(frozen=True)
class SpaceConfig:
    """One space this node belongs to (or is joining). Stored encrypted in the node's store."""

    space_id: str
    name: str
    operator_did: str
    broker_host: str
    broker_port: int
    tls_ca_pem: str | None
    username: str
    password: str
    status: str
    credential: dict | None
    tls_cert_pem: str | None = None  # client certificate (PEM), when the broker asks for one
    tls_key_pem: str | None = None

    def __repr__(self) -> str:  # never show the password or the client key
        return (f"SpaceConfig(space_id={self.space_id!r}, status={self.status!r}, "
                f"broker={self.broker_host}:{self.broker_port}, username={self.username!r})")

    @property
    def join_token(self) -> str | None:
        """The invitation token id of a joining node's one-time account (``join-<token id>``)."""
        if self.username.startswith(JOIN_USERNAME_PREFIX):
            return self.username[len(JOIN_USERNAME_PREFIX):] or None
        return None


def valid_space_id(space_id: object) -> bool:
    return isinstance(space_id, str) and SPACE_ID_RE.fullmatch(space_id) is not None


def space_root(space_id: str) -> str:
    return f"{TOPIC_ROOT}/{space_id}"


def absolute(space_id: str, topic: str) -> str:
    return f"{space_root(space_id)}/{topic}"


def relative(space_id: str, full_topic: str) -> str | None:
    prefix = space_root(space_id) + "/"
    return full_topic[len(prefix):] if full_topic.startswith(prefix) else None


def well_formed_topic(topic: object) -> bool:
    """A relative topic we may publish to: non-empty levels, no wildcards, no leading ``$``."""
    if not isinstance(topic, str) or not topic or len(topic) > 512:
        return False
    if "+" in topic or "#" in topic or "\x00" in topic or topic[0] == "$" or topic[0] == "/" or topic[-1] == "/":
        return False
    return "//" not in topic


# --- who may publish where (mirrors the broker ACL in appliance/operator/broker_config.py) -----


def may_publish(config: SpaceConfig, node_did: str, topic: str) -> bool:
    """Whether this node, in this space and status, may publish to relative ``topic``.

    * joining: only ``operator/join/<token id>`` of its one-time account;
    * member: ``node/<own did>/…``, ``catalog/<own did>/…``, ``evidence/<own did>``, ``inbox/<anyone>``;
    * operator: ``operator/…``, ``node/<own did>/…``, ``inbox/<anyone>``;
    * revoked or left: nothing.
    """
    return may_publish_as(config.status, config.username, node_did, topic)


def may_publish_as(status: str, username: str, node_did: str, topic: str) -> bool:
    """:func:`may_publish` from the two settings it reads (the quick form on the publish path)."""
    if not well_formed_topic(topic):
        return False
    parts = topic.split("/")
    if status == "joining":
        token = username[len(JOIN_USERNAME_PREFIX):] if username.startswith(JOIN_USERNAME_PREFIX) else ""
        return bool(token) and parts == ["operator", "join", token]
    if status not in ("member", "operator"):
        return False
    if parts[0] == "inbox":
        return len(parts) == 2
    if parts[0] == "node" and len(parts) >= 3:
        return parts[1] == node_did
    if status == "member":
        if parts[0] == "catalog" and len(parts) >= 3:
            return parts[1] == node_did
        return parts == ["evidence", node_did]
    return parts[0] == "operator" and len(parts) >= 2


def subscriptions(config: SpaceConfig, node_did: str) -> list[str]:
    """The MQTT filters (relative) a node subscribes to in a space with this status."""
    if config.status == "joining":
        token = config.join_token
        return [f"operator/join/{token}/reply"] if token else []
    if config.status == "operator":
        return ["#"]
    if config.status == "member":
        return [f"inbox/{node_did}", "node/+/card", "node/+/status", "catalog/#", "evidence/+", "operator/#"]
    return []


@dataclass(frozen=True)
class TopicRule:
    """Who may have sent a message on a topic: ``owner`` (a did that must equal ``from``) or
    ``operator`` (must be the space operator), and to whom it is addressed (``to``)."""

    kind: str  # card, status, catalog, evidence, inbox, join, join_reply, operator
    owner: str | None = None  # did that must be the sender; None = anyone (checked elsewhere)
    operator: bool = False  # the sender must be the space operator
    to: str | None = None  # the envelope must be addressed to this did
    dataset: str | None = None


def topic_rule(topic: str, operator_did: str) -> TopicRule | None:
    """Classify a received relative topic; None for a topic outside the tree."""
    parts = topic.split("/")
    if not all(parts):
        return None
    head, n = parts[0], len(parts)
    if head == "node" and n == 3 and parts[2] in ("card", "status"):
        return TopicRule(parts[2], owner=parts[1])
    if head == "catalog" and n == 3:
        return TopicRule("catalog", owner=parts[1], dataset=parts[2])
    if head == "evidence" and n == 2:
        return TopicRule("evidence", owner=parts[1])
    if head == "inbox" and n == 2:
        return TopicRule("inbox", to=parts[1])
    if head == "operator" and n >= 2:
        if parts[1] == "join" and n == 3:
            return TopicRule("join", to=operator_did)
        if parts[1] == "join" and n == 4 and parts[3] == "reply":
            return TopicRule("join_reply", operator=True)
        return TopicRule("operator", operator=True)
    return None


def stream_for(topic: str) -> str:
    """The sequence stream of a message: its relative topic (``inbox/<to>`` for direct messages)."""
    return topic


def gap_tracked(topic: str, my_did: str) -> bool:
    """Streams whose gaps this node asks to have resent: its inbox and operator broadcasts, not joins."""
    parts = topic.split("/")
    if parts[0] == "inbox":
        return parts[1:] == [my_did]
    return parts[0] == "operator" and parts[1:2] != ["join"]


# --- dropped messages ------------------------------------------------------------------------


class DropReason(StrEnum):
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"  # signature invalid, or signer is not who the topic says
    REPLAYED = "replayed"  # message id already applied (within the dedup window)
    WRONG_SPACE = "wrong_space"
    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    FROM_REVOKED = "from_revoked"
    NOT_FOR_ME = "not_for_me"
    STALE = "stale"  # older than the dedup window, too far in the future, or older state
    REJECTED = "rejected"  # a handler refused it (ApplianceError)
    HANDLER_FAILED = "handler_failed"  # checking or applying it hit a bug, and the quarantine was full
    QUARANTINED = "quarantined"  # checking or applying it hit a bug: kept, retried after an upgrade


# --- the connection of one space, as a table ---------------------------------------------------


class LinkState(Enum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    OFFLINE = "offline"  # waiting (backoff with jitter) before the next attempt
    STOPPING = "stopping"


class LinkEvent(Enum):
    START = "start"
    CONNECTED = "connected"
    CONNECT_FAILED = "connect_failed"
    CONNECTION_LOST = "connection_lost"
    RETRY = "retry"  # the backoff delay elapsed
    STOP = "stop"
    CLOSED = "closed"


class LinkAction(Enum):
    CONNECT = "connect"
    SUBSCRIBE = "subscribe"  # and publish presence, and start sending the outbox
    RESET_BACKOFF = "reset_backoff"
    BACKOFF = "backoff"  # schedule the next attempt
    SAY_GOODBYE = "say_goodbye"  # publish the offline status, disconnect cleanly
    CLOSE = "close"


_S, _E, _A = LinkState, LinkEvent, LinkAction
TRANSITIONS: Table[LinkState, LinkEvent, LinkAction] = Table({
    (_S.STOPPED, _E.START): (_S.CONNECTING, (_A.CONNECT,)),
    (_S.CONNECTING, _E.CONNECTED): (_S.CONNECTED, (_A.RESET_BACKOFF, _A.SUBSCRIBE)),
    (_S.CONNECTING, _E.CONNECT_FAILED): (_S.OFFLINE, (_A.BACKOFF,)),
    (_S.CONNECTING, _E.CONNECTION_LOST): (_S.OFFLINE, (_A.BACKOFF,)),
    (_S.CONNECTING, _E.STOP): (_S.STOPPED, (_A.CLOSE,)),
    (_S.CONNECTED, _E.CONNECTION_LOST): (_S.OFFLINE, (_A.BACKOFF,)),
    (_S.CONNECTED, _E.STOP): (_S.STOPPING, (_A.SAY_GOODBYE,)),
    (_S.OFFLINE, _E.RETRY): (_S.CONNECTING, (_A.CONNECT,)),
    (_S.OFFLINE, _E.STOP): (_S.STOPPED, (_A.CLOSE,)),
    (_S.STOPPING, _E.CLOSED): (_S.STOPPED, (_A.CLOSE,)),
    (_S.STOPPING, _E.CONNECTION_LOST): (_S.STOPPED, (_A.CLOSE,)),
}, refuse=lambda state, event: IllegalTransition(event, state))


class IllegalTransition(RuntimeError):
    """A bug, not a user's error: the link got ``event`` in a ``state`` that has no transition for it."""

    def __init__(self, event: LinkEvent, state: LinkState) -> None:
        super().__init__(event, state)
        self.event, self.state = event, state

    def __str__(self) -> str:
        return f"sync link: event {self.event.value} is not allowed in state {self.state.value}"


def step(state: LinkState, event: LinkEvent) -> tuple[LinkState, tuple[LinkAction, ...]]:
    """The next state and the actions for ``event`` in ``state``; IllegalTransition names both."""
    return TRANSITIONS.step(state, event)


def backoff_delay(attempt: int, initial: float, maximum: float, rand: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random (``rand`` in [0, 1))."""
    ceiling = min(maximum, initial * (2 ** min(attempt, 30)))
    return ceiling / 2 + ceiling / 2 * rand


# --- sequence streams: gaps ------------------------------------------------------------------

MAX_TRACKED_ABOVE = 2000


@dataclass
class StreamTrack:
    """What a receiver knows of one sender's stream: all seqs up to ``contiguous`` arrived, and
    these ones above it."""

    contiguous: int
    above: list[int] = field(default_factory=list)

    def add(self, seq: int) -> bool:
        """Record ``seq``; returns True if it opened or left a gap below it."""
        if seq <= self.contiguous or seq in self.above:
            return bool(self.above)
        if seq == self.contiguous + 1:
            self.contiguous = seq
        else:
            self.above.append(seq)
            self.above.sort()
        while self.above and self.above[0] == self.contiguous + 1:
            self.contiguous = self.above.pop(0)
        if len(self.above) > MAX_TRACKED_ABOVE:  # give up on the oldest gaps rather than grow
            self.contiguous = self.above[-MAX_TRACKED_ABOVE - 1]
            self.above = [s for s in self.above if s > self.contiguous]
        return bool(self.above)

    def skip_through(self, seq: int) -> None:
        """The sender no longer has messages up to ``seq``: stop waiting for them."""
        if seq > self.contiguous:
            self.contiguous = seq
            self.above = [s for s in self.above if s > seq]
            while self.above and self.above[0] == self.contiguous + 1:
                self.contiguous = self.above.pop(0)

    def missing(self, limit: int = 1000) -> list[list[int]]:
        """The missing seqs as inclusive ranges ``[[lo, hi], …]``, at most ``limit`` seqs in all."""
        ranges, expected, count = [], self.contiguous + 1, 0
        for seq in self.above:
            if seq > expected:
                hi = min(seq - 1, expected + (limit - count) - 1)
                ranges.append([expected, hi])
                count += hi - expected + 1
                if count >= limit:
                    break
            expected = seq + 1
        return ranges


def expand_ranges(ranges: object, limit: int = 1000) -> list[int]:
    """Seqs listed by ``[[lo, hi], …]`` (inclusive), at most ``limit``; ValueError if malformed."""
    if not isinstance(ranges, list):
        raise ValueError("ranges must be a list")
    out: list[int] = []
    for item in ranges:
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in item)
                or item[0] > item[1]):
            raise ValueError("each range is [lo, hi] with 1 <= lo <= hi")
        out.extend(range(item[0], min(item[1], item[0] + limit - len(out) - 1) + 1))
        if len(out) >= limit:
            break
    return out


def to_ranges(seqs: list[int]) -> list[list[int]]:
    ranges: list[list[int]] = []
    for s in sorted(set(seqs)):
        if ranges and s == ranges[-1][1] + 1:
            ranges[-1][1] = s
        else:
            ranges.append([s, s])
    return ranges


# --- what the service reports and emits ------------------------------------------------------


@dataclass(frozen=True)
class SpaceStatus:
    space_id: str
    name: str
    membership: str  # the SpaceConfig status
    state: str  # LinkState value: connected, connecting, offline, stopped, stopping
    connected: bool
    broker: str
    queued: int  # outbox messages not yet acknowledged by the broker
    last_sync: str | None  # when the outbox was last empty while connected, or a message arrived
    last_error: str | None
    sent: int
    received: int
    dropped: dict[str, int]
    quarantined: int = 0  # received messages that hit a bug, kept to be tried again (sync_quarantine)


@dataclass(frozen=True)
class CatalogEntry:
    space_id: str
    provider: str
    dataset_id: str
    entry: dict
    updated: str
    msg_id: str = ""  # the provider's signed retained message that carried it (new content, new id)


@dataclass(frozen=True)
class SyncStateChanged:
    space_id: str
    state: str
    error: str | None = None


@dataclass(frozen=True)
class MessageDropped:
    space_id: str
    reason: str
    topic: str
    sender: str | None = None


@dataclass(frozen=True)
class MessagesSent:
    space_id: str
    count: int  # acknowledged by the broker
    refused: int = 0  # refused by the broker (e.g. not authorised), not retried


@dataclass(frozen=True)
class MessageApplied:
    space_id: str
    type: str
    sender: str
    topic: str


@dataclass(frozen=True)
class CatalogChanged:
    space_id: str
    provider: str
    dataset_id: str
    removed: bool


@dataclass(frozen=True)
class Received:
    """A verified message as handlers see it. ``body`` is opened if it was sealed to this node.

    For a retained topic that was cleared (e.g. a delisted catalog entry) ``envelope`` and ``body``
    are None and ``sender`` is the did the topic belongs to (None for operator topics).
    """

    space_id: str
    topic: str  # relative to tds/v1/{space}/
    envelope: dict | None
    body: object
    sender: str | None
    retained: bool

    @property
    def type(self) -> str | None:
        return self.envelope["type"] if self.envelope else None

    @property
    def id(self) -> str | None:
        return self.envelope["id"] if self.envelope else None


@dataclass(frozen=True)
class SyncTimers:
    """Every timer and limit of space sync (seconds unless named otherwise), passed in."""

    keepalive: int = 30
    connect_timeout: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    session_expiry: int = 7 * 24 * 3600  # the broker keeps our session (and QoS 1 messages) this long
    dedup_window: float = 7 * 24 * 3600  # message ids remembered; older stream messages are stale
    max_future_skew: float = 600.0  # a stream message dated further ahead than this is stale
    outbox_retention: float = 7 * 24 * 3600  # sent messages kept for resend requests
    resend_after: float = 2.0  # wait this long before asking for a gap to be filled
    resend_attempts: int = 5
    confirm_delay: float = 1.0  # confirm received inbox streams to their senders after this long
    window: int = 500  # most QoS 1 messages in flight per connection (also capped by the broker)
    ack_flush: float = 0.05  # mark acknowledged messages sent at least this often
    stop_timeout: float = 3.0  # how long stop() waits for the offline status to be acknowledged
    housekeeping: float = 3600.0  # purge old outbox and inbox rows this often
    max_message: int = 256 * 1024
    reconcile_poll: float = 30.0  # the supervisor re-reads the space list at least this often


@dataclass(frozen=True)
class Peer:
    space_id: str
    did: str
    name: str
    org: str
    presence: str | None  # online, offline, or None if never seen
    presence_ts: str | None
    card: dict | None
