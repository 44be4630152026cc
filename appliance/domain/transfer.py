"""Data delivery: the Dataspace Protocol 2025-1 transfer process as a table.

Each message of the protocol is an ``Event``; ``SENDER`` fixes who sends the one-sided ones (the
consumer requests, the provider starts); suspending, completing and terminating are open to either
side, and a local timeout terminates too. ``TRANSITIONS`` is a ``machine.Table``; ``step`` is pure:
given the state, the event and the role of whoever sent it, it returns the next state and the
actions (none: the service does what each move says) or raises ``IllegalTransferMove`` naming both.
``moves`` says which messages one side may send now (what the CLI and GUI offer: pause, resume,
cancel).

Resuming: only the provider's TransferStartMessage takes a SUSPENDED transfer back to STARTED. A
consumer that wants to go on sends a TransferStartMessage too (DSP allows it after a suspension);
that is ``RESUME``, a request that leaves the transfer SUSPENDED until the provider answers with
its start (which carries the data address to use, e.g. a new port).

Push moves through the same table: the consumer's request (format ``dsnode+push``) names its own
data address, and the provider connects to it. A push the provider starts is first an offer, which
is not a DSP message and leaves the provider's transfer INITIAL; the consumer's request then moves
it to REQUESTED, or the consumer's termination (a refusal) ends it. The diagram in
docs/state-machines/transfer.dot is generated from this table (``transfer_diagram``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Never

from appliance.domain.machine import Table
from appliance.errors import IllegalTransferMove


class State(StrEnum):
    INITIAL = "INITIAL"  # local pseudo-state: no message exchanged yet
    REQUESTED = "REQUESTED"
    STARTED = "STARTED"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    TERMINATED = "TERMINATED"


class Role(StrEnum):
    PROVIDER = "provider"
    CONSUMER = "consumer"


class Event(StrEnum):
    REQUEST = "TransferRequestMessage"
    START = "TransferStartMessage"
    RESUME = "TransferStartMessage:resume"  # the consumer's start after a suspension: a request
    SUSPEND = "TransferSuspensionMessage"
    COMPLETE = "TransferCompletionMessage"
    TERMINATE = "TransferTerminationMessage"
    TIMEOUT = "timeout"  # not a message: the local clock ran out


SENDER: dict[Event, Role] = {
    Event.REQUEST: Role.CONSUMER,
    Event.START: Role.PROVIDER,
    Event.RESUME: Role.CONSUMER,
}
EITHER = frozenset({Event.SUSPEND, Event.COMPLETE, Event.TERMINATE})  # messages both sides may send

FINAL = frozenset({State.COMPLETED, State.TERMINATED})

_MESSAGES: dict[tuple[State, Event], tuple[State, tuple[Never, ...]]] = {
    (State.INITIAL, Event.REQUEST): (State.REQUESTED, ()),
    (State.REQUESTED, Event.START): (State.STARTED, ()),
    (State.STARTED, Event.SUSPEND): (State.SUSPENDED, ()),
    (State.SUSPENDED, Event.RESUME): (State.SUSPENDED, ()),  # the provider answers with START
    (State.SUSPENDED, Event.START): (State.STARTED, ()),
    (State.STARTED, Event.COMPLETE): (State.COMPLETED, ()),
}
TRANSITIONS: Table[State, Event, Never] = Table({
    **_MESSAGES,
    # either side (or the local clock) may end a transfer that is not over; a person is offered it
    # only once a message was exchanged (``moves``)
    **{(state, event): (State.TERMINATED, ()) for event in (Event.TERMINATE, Event.TIMEOUT)
       for state in State if state not in FINAL},
}, refuse=lambda state, event: IllegalTransferMove(event.value, state.value))


def step(state: State, event: Event, sender: Role | None) -> tuple[State, tuple[Never, ...]]:
    """The state after ``event`` sent by ``sender`` (None for the local timeout), and its actions (none).

    A one-sided message must come from the side that sends it (``SENDER``); the others from either."""
    if event in SENDER and SENDER[event] is not sender:
        raise TRANSITIONS.refuse(state, event)
    return TRANSITIONS.step(state, event)


def moves(state: State, role: Role) -> frozenset[Event]:
    """The messages ``role`` may send in ``state``."""
    allowed = {event for event in TRANSITIONS.events(state)
               if SENDER.get(event) is role or (event in EITHER and event is not Event.TERMINATE)}
    if state is not State.INITIAL and TRANSITIONS.allows(state, Event.TERMINATE):
        allowed.add(Event.TERMINATE)
    return frozenset(allowed)


def _label(event: Event) -> str:
    name = event.value.partition(":")[0].removeprefix("Transfer").removesuffix("Message")
    who = SENDER[event].value if event in SENDER else "either"
    return f"{name}{' (resume)' if event is Event.RESUME else ''}\\n({who})"


def dot() -> str:
    """The state machine as Graphviz text (docs/state-machines/transfer.dot is generated from it)."""
    lines = ["digraph transfer {", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="sans"];',
             "  INITIAL [shape=point];", "  COMPLETED [peripheries=2];", "  TERMINATED [peripheries=2];"]
    for (source, event), (target, _) in TRANSITIONS.items():
        if event in (Event.TERMINATE, Event.TIMEOUT):
            continue
        lines.append(f'  {source.value} -> {target.value} [label="{_label(event)}"];')
    for state in State:
        if state is not State.INITIAL and TRANSITIONS.allows(state, Event.TERMINATE):
            lines.append(f'  {state.value} -> TERMINATED [label="Termination / timeout\\n(either)", style=dashed];')
    lines.append("}")
    return "\n".join(lines) + "\n"
