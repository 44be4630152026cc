"""Contract negotiation: the Dataspace Protocol 2025-1 state machine as a table.

Each message of the protocol is an ``Event``; who may send it is fixed (``SENDER``). ``TRANSITIONS``
is a ``machine.Table``; ``step`` is pure: given the state, the event and the role of whoever sent
it, it returns the next state and the actions (none: the services send what each move says) or
raises ``IllegalTransition`` naming both. ``moves`` says which messages one side may send now (what
the CLI and GUI offer as buttons). Terminating is open to either side in every non-final state; a
local timeout terminates too. The diagram in docs/state-machines/ is generated from this table.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Never

from appliance.domain.machine import Table
from appliance.errors import IllegalTransition


class State(StrEnum):
    INITIAL = "INITIAL"  # local pseudo-state: no message exchanged yet
    REQUESTED = "REQUESTED"
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    AGREED = "AGREED"
    VERIFIED = "VERIFIED"
    FINALIZED = "FINALIZED"
    TERMINATED = "TERMINATED"


class Role(StrEnum):
    CONSUMER = "consumer"
    PROVIDER = "provider"


class Event(StrEnum):
    REQUEST = "ContractRequestMessage"
    OFFER = "ContractOfferMessage"
    ACCEPT = "ContractNegotiationEventMessage:ACCEPTED"
    AGREE = "ContractAgreementMessage"
    VERIFY = "ContractAgreementVerificationMessage"
    FINALIZE = "ContractNegotiationEventMessage:FINALIZED"
    TERMINATE = "ContractNegotiationTerminationMessage"
    TIMEOUT = "timeout"  # not a message: the local clock ran out


SENDER: dict[Event, Role] = {
    Event.REQUEST: Role.CONSUMER,
    Event.OFFER: Role.PROVIDER,
    Event.ACCEPT: Role.CONSUMER,
    Event.AGREE: Role.PROVIDER,
    Event.VERIFY: Role.CONSUMER,
    Event.FINALIZE: Role.PROVIDER,
}

FINAL = frozenset({State.FINALIZED, State.TERMINATED})

_MESSAGES: dict[tuple[State, Event], tuple[State, tuple[Never, ...]]] = {
    (State.INITIAL, Event.REQUEST): (State.REQUESTED, ()),  # consumer-initiated
    (State.INITIAL, Event.OFFER): (State.OFFERED, ()),  # provider-initiated (e.g. answering a demand)
    (State.REQUESTED, Event.OFFER): (State.OFFERED, ()),  # provider counter-offer
    (State.REQUESTED, Event.AGREE): (State.AGREED, ()),
    (State.OFFERED, Event.REQUEST): (State.REQUESTED, ()),  # consumer counter-request
    (State.OFFERED, Event.ACCEPT): (State.ACCEPTED, ()),
    (State.ACCEPTED, Event.AGREE): (State.AGREED, ()),
    (State.AGREED, Event.VERIFY): (State.VERIFIED, ()),
    (State.VERIFIED, Event.FINALIZE): (State.FINALIZED, ()),
}
TRANSITIONS: Table[State, Event, Never] = Table({
    **_MESSAGES,
    # either side (or the local clock) may end a negotiation that is not over; a person is offered
    # it only once a message was exchanged (``moves``)
    **{(state, event): (State.TERMINATED, ()) for event in (Event.TERMINATE, Event.TIMEOUT)
       for state in State if state not in FINAL},
}, refuse=lambda state, event: IllegalTransition(event.value, state.value))


def step(state: State, event: Event, sender: Role | None) -> tuple[State, tuple[Never, ...]]:
    """The state after ``event`` sent by ``sender`` (None for the local timeout), and its actions (none).

    A message must come from the side that sends it (``SENDER``); a termination from either."""
    if event in SENDER and SENDER[event] is not sender:
        raise TRANSITIONS.refuse(state, event)
    return TRANSITIONS.step(state, event)


def moves(state: State, role: Role) -> frozenset[Event]:
    """The messages ``role`` may send in ``state``."""
    allowed = {event for event in TRANSITIONS.events(state) if SENDER.get(event) is role}
    if state is not State.INITIAL and TRANSITIONS.allows(state, Event.TERMINATE):
        allowed.add(Event.TERMINATE)
    return frozenset(allowed)


def dot() -> str:
    """The state machine as Graphviz text (docs/state-machines/negotiation.dot is generated from it)."""
    lines = ["digraph negotiation {", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="sans"];',
             '  INITIAL [shape=point];', "  FINALIZED [peripheries=2];", "  TERMINATED [peripheries=2];"]
    for (source, event), (target, _) in TRANSITIONS.items():
        if event not in SENDER:
            continue
        label = f"{event.value.replace('ContractNegotiation', '').replace('Contract', '')}\\n({SENDER[event].value})"
        lines.append(f'  {source.value} -> {target.value} [label="{label}"];')
    for state in State:
        if state is not State.INITIAL and TRANSITIONS.allows(state, Event.TERMINATE):
            lines.append(f'  {state.value} -> TERMINATED [label="Termination / timeout\\n(either)", style=dashed];')
    lines.append("}")
    return "\n".join(lines) + "\n"
