"""Flows that every adapter drives the same way: first-run setup and joining a space.

The CLI (`dsnode init`, `dsnode space join --wait`) and the desktop app's wizard call these, so
the steps, their checks and the waiting for an operator's decision live in one place and are
tested without a terminal or Qt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.domain.membership import JoinPending, JoinRejected, SpaceJoined
from appliance.errors import PassphraseMismatch, PassphraseTooShort

MIN_PASSPHRASE = 8


# --- first run: the new store's passphrase ---------------------------------------------------


def passphrase_strength(text: str) -> int:
    """A rough strength from 0 (too short) to 4 (strong): length and the kinds of characters."""
    if len(text) < MIN_PASSPHRASE:
        return 0
    kinds = sum((any(c.islower() for c in text), any(c.isupper() for c in text),
                 any(c.isdigit() for c in text), any(not c.isalnum() for c in text),
                 any(ord(c) > 127 for c in text)))
    score = 1 + (len(text) >= 12) + (len(text) >= 16) + (kinds >= 3)
    return min(score, 4)


def check_new_passphrase(first: str, second: str) -> bytes:
    """The new passphrase as bytes; PassphraseMismatch or PassphraseTooShort when it will not do."""
    if first != second:
        raise PassphraseMismatch()
    if len(first) < MIN_PASSPHRASE:
        raise PassphraseTooShort(MIN_PASSPHRASE)
    return first.encode("utf-8")


def passphrase_matches(node, passphrase: bytes) -> bool:
    """Whether ``passphrase`` opens this (open) node's store: for unlocking after an idle time."""
    from appliance.storage.kdf import read_header
    from appliance.storage.layout import StoreLayout

    header = read_header(StoreLayout(Path(node.home)).header)
    return bool(header.knows(header.derive_key(passphrase)))


# --- joining a space and waiting for the operator ------------------------------------------


@dataclass(frozen=True)
class JoinOutcome:
    space_id: str
    events: tuple[object, ...]  # JoinPending, SpaceJoined, JoinRejected of this space, in order
    grade: int | None  # the member grade, once admitted
    decided: bool  # admitted or rejected while waiting

    @property
    def admitted(self) -> bool:
        return any(isinstance(e, SpaceJoined) for e in self.events)

    @property
    def rejection(self) -> str | None:
        return next((e.reason for e in self.events if isinstance(e, JoinRejected)), None)


def join_and_wait(node, invitation: str, *, wait: float = 0.0, on_sent: Callable[[], None] | None = None,
                  cancel: threading.Event | None = None) -> JoinOutcome:
    """Send the join request of ``invitation`` (a code or a file) and wait up to ``wait`` seconds
    for the operator's decision. A node that is not running is started for the wait and stopped
    again; a running node (the daemon's, the app's) keeps running. ``cancel`` ends the wait early."""
    space_id = node.membership.read_invitation(invitation).space_id
    events: list[object] = []
    done = threading.Event()

    def on_event(event) -> None:
        if isinstance(event, (JoinPending, SpaceJoined, JoinRejected)) and event.space_id == space_id:
            events.append(event)
            if not isinstance(event, JoinPending):
                done.set()

    grade = None
    unsubscribe = node.bus.subscribe(on_event)
    try:
        node.membership.join(invitation)
        if on_sent is not None:
            on_sent()
        if wait > 0:
            started = not node.sync.running
            if started:
                node.start()
            try:
                _wait(done, wait, cancel)
                if any(isinstance(e, SpaceJoined) for e in events):
                    grade = node.membership.grade(space_id)
            finally:
                if started:
                    node.stop()
    finally:
        unsubscribe()
    return JoinOutcome(space_id, tuple(events), grade, done.is_set())


def _wait(done: threading.Event, seconds: float, cancel: threading.Event | None) -> None:
    if cancel is None:
        done.wait(seconds)
        return
    remaining = seconds
    while remaining > 0 and not done.is_set() and not cancel.is_set():
        done.wait(min(0.2, remaining))
        remaining -= 0.2
