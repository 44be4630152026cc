"""The negotiation state machine follows the Dataspace Protocol 2025-1 table, and nothing else."""

import itertools
from pathlib import Path

import pytest

from appliance.domain.negotiation import FINAL, SENDER, TRANSITIONS, Event, Role, State, dot, moves, step
from appliance.errors import IllegalTransition

DOCS = Path(__file__).resolve().parents[2] / "docs" / "state-machines" / "negotiation.dot"


def test_consumer_initiated_happy_path():
    s = State.INITIAL
    for event in (Event.REQUEST, Event.AGREE, Event.VERIFY, Event.FINALIZE):
        s, actions = step(s, event, SENDER[event])
        assert actions == ()
    assert s is State.FINALIZED


def test_provider_initiated_path_with_counter_offers():
    s, _ = step(State.INITIAL, Event.OFFER, Role.PROVIDER)
    s, _ = step(s, Event.REQUEST, Role.CONSUMER)  # counter-request
    s, _ = step(s, Event.OFFER, Role.PROVIDER)  # counter-offer
    s, _ = step(s, Event.ACCEPT, Role.CONSUMER)
    s, _ = step(s, Event.AGREE, Role.PROVIDER)
    s, _ = step(s, Event.VERIFY, Role.CONSUMER)
    assert step(s, Event.FINALIZE, Role.PROVIDER) == (State.FINALIZED, ())


@pytest.mark.parametrize("state", [s for s in State if s not in FINAL and s is not State.INITIAL])
@pytest.mark.parametrize("who", list(Role))
def test_either_side_may_terminate_any_open_negotiation(state, who):
    assert step(state, Event.TERMINATE, who) == (State.TERMINATED, ())
    assert step(state, Event.TIMEOUT, None) == (State.TERMINATED, ())
    assert Event.TERMINATE in moves(state, who)


def test_every_pair_outside_the_table_is_refused_and_named():
    legal = 0
    for state, event, who in itertools.product(State, Event, list(Role) + [None]):
        if state in FINAL:
            expected = None
        elif event in (Event.TERMINATE, Event.TIMEOUT):
            expected = State.TERMINATED
        elif who is SENDER.get(event) and (state, event) in TRANSITIONS:
            expected, _ = TRANSITIONS[(state, event)]
        else:
            expected = None
        if expected is None:
            with pytest.raises(IllegalTransition) as err:
                step(state, event, who)
            assert event.value in err.value.message("en") and state.value in err.value.message("en")
        else:
            assert step(state, event, who) == (expected, ())
            legal += 1
    assert legal > len(TRANSITIONS)


def test_the_table_walks_every_allowed_move_and_refuses_one_outside_it():
    for (state, event), (after, actions) in TRANSITIONS.items():
        assert step(state, event, SENDER.get(event)) == (after, actions)
    assert len(TRANSITIONS) == 9 + 2 * 6  # the messages; termination and timeout from each open state
    with pytest.raises(IllegalTransition) as err:
        step(State.FINALIZED, Event.TERMINATE, Role.PROVIDER)
    assert err.value.args == (Event.TERMINATE.value, State.FINALIZED.value)
    assert err.value.exit_code == 121


def test_the_wrong_side_cannot_send_a_message():
    with pytest.raises(IllegalTransition):
        step(State.REQUESTED, Event.AGREE, Role.CONSUMER)  # only the provider agrees
    with pytest.raises(IllegalTransition):
        step(State.AGREED, Event.VERIFY, Role.PROVIDER)  # only the consumer verifies


def test_moves_match_the_table():
    assert moves(State.REQUESTED, Role.PROVIDER) == {Event.OFFER, Event.AGREE, Event.TERMINATE}
    assert moves(State.REQUESTED, Role.CONSUMER) == {Event.TERMINATE}
    assert moves(State.INITIAL, Role.CONSUMER) == {Event.REQUEST}
    assert moves(State.FINALIZED, Role.PROVIDER) == frozenset()


def test_the_diagram_in_docs_is_generated_from_the_table():
    assert DOCS.read_text() == dot(), "run: python -m appliance.domain.negotiation_diagram"
