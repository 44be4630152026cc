"""The transfer process state machine follows the Dataspace Protocol 2025-1 table, and nothing else."""

import itertools
from pathlib import Path

import pytest

from appliance.domain.transfer import EITHER, FINAL, SENDER, TRANSITIONS, Event, Role, State, dot, moves, step
from appliance.errors import DeliveryError, IllegalTransferMove

DOCS = Path(__file__).resolve().parents[2] / "docs" / "state-machines" / "transfer.dot"


def test_a_delivery_requested_started_and_completed():
    s, actions = step(State.INITIAL, Event.REQUEST, Role.CONSUMER)
    assert (s, actions) == (State.REQUESTED, ())
    s, _ = step(s, Event.START, Role.PROVIDER)
    assert step(s, Event.COMPLETE, Role.CONSUMER) == (State.COMPLETED, ())
    assert step(State.STARTED, Event.COMPLETE, Role.PROVIDER) == (State.COMPLETED, ())


def test_a_push_the_provider_offered_is_still_requested_by_the_consumer():
    """A pushed transfer moves as a pulled one: the provider's offer (not DSP) leaves its side INITIAL,
    the consumer's request moves it; the provider cannot request for the consumer."""
    assert step(State.INITIAL, Event.REQUEST, Role.CONSUMER) == (State.REQUESTED, ())
    with pytest.raises(IllegalTransferMove):
        step(State.INITIAL, Event.REQUEST, Role.PROVIDER)
    assert step(State.INITIAL, Event.TERMINATE, Role.CONSUMER) == (State.TERMINATED, ())  # the consumer refused


@pytest.mark.parametrize("who", list(Role))
def test_either_side_suspends_and_the_provider_starts_again(who):
    s, _ = step(State.STARTED, Event.SUSPEND, who)
    assert s is State.SUSPENDED
    assert step(s, Event.RESUME, Role.CONSUMER) == (State.SUSPENDED, ())  # asks; the provider answers
    assert step(s, Event.START, Role.PROVIDER) == (State.STARTED, ())


@pytest.mark.parametrize("state", [s for s in State if s not in FINAL])
@pytest.mark.parametrize("who", list(Role))
def test_either_side_may_terminate_any_open_transfer(state, who):
    assert step(state, Event.TERMINATE, who) == (State.TERMINATED, ())
    assert step(state, Event.TIMEOUT, None) == (State.TERMINATED, ())
    assert (Event.TERMINATE in moves(state, who)) is (state is not State.INITIAL)


def test_the_table_walks_every_allowed_move_and_refuses_one_outside_it():
    for (state, event), (after, actions) in TRANSITIONS.items():
        for who in ([SENDER[event]] if event in SENDER else [Role.PROVIDER, Role.CONSUMER, None]):
            assert step(state, event, who) == (after, actions)
    assert len(TRANSITIONS) == 6 + 2 * 4  # the messages; termination and timeout from each open state
    with pytest.raises(IllegalTransferMove) as err:
        step(State.COMPLETED, Event.SUSPEND, Role.PROVIDER)
    assert err.value.args == (Event.SUSPEND.value, State.COMPLETED.value)
    assert err.value.exit_code == 151 and isinstance(err.value, DeliveryError)
    assert err.value.message("en") == ("A TransferSuspensionMessage message is not allowed while the transfer is "
                                       "COMPLETED. Nothing was changed.")
    zh = err.value.message("zh_CN")
    assert zh == "传输处于 COMPLETED 状态时不允许 TransferSuspensionMessage 消息。未做任何更改。"


def test_every_pair_outside_the_table_is_refused_and_named():
    legal = 0
    for state, event, who in itertools.product(State, Event, list(Role) + [None]):
        allowed = (state, event) in TRANSITIONS and (event not in SENDER or SENDER[event] is who)
        if allowed:
            assert step(state, event, who) == TRANSITIONS[(state, event)]
            legal += 1
        else:
            with pytest.raises(IllegalTransferMove) as err:
                step(state, event, who)
            assert event.value in err.value.message("en") and state.value in err.value.message("en")
    assert legal > len(TRANSITIONS)


def test_the_wrong_side_cannot_send_a_one_sided_message():
    with pytest.raises(IllegalTransferMove):
        step(State.INITIAL, Event.REQUEST, Role.PROVIDER)  # only the consumer requests
    with pytest.raises(IllegalTransferMove):
        step(State.REQUESTED, Event.START, Role.CONSUMER)  # only the provider starts
    with pytest.raises(IllegalTransferMove):
        step(State.SUSPENDED, Event.RESUME, Role.PROVIDER)  # the provider resumes by starting
    with pytest.raises(IllegalTransferMove):
        step(State.REQUESTED, Event.SUSPEND, Role.CONSUMER)  # nothing to suspend before the start


def test_moves_match_the_table():
    assert moves(State.INITIAL, Role.CONSUMER) == {Event.REQUEST}
    assert moves(State.INITIAL, Role.PROVIDER) == frozenset()
    assert moves(State.REQUESTED, Role.PROVIDER) == {Event.START, Event.TERMINATE}
    assert moves(State.REQUESTED, Role.CONSUMER) == {Event.TERMINATE}
    assert moves(State.STARTED, Role.CONSUMER) == {Event.SUSPEND, Event.COMPLETE, Event.TERMINATE}
    assert moves(State.SUSPENDED, Role.CONSUMER) == {Event.RESUME, Event.TERMINATE}
    assert moves(State.SUSPENDED, Role.PROVIDER) == {Event.START, Event.TERMINATE}
    for state in FINAL:
        assert moves(state, Role.PROVIDER) == moves(state, Role.CONSUMER) == frozenset()
    assert EITHER.isdisjoint(SENDER)


def test_the_diagram_in_docs_is_generated_from_the_table():
    assert DOCS.read_text() == dot(), "run: python -m appliance.domain.transfer_diagram"
