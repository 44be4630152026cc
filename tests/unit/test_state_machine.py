"""The one shape of every protocol table (appliance.domain.machine), and each table walked through it:
every allowed move gives its row's state and actions, and a move outside the table is refused with
the table's own error."""

from enum import Enum

import pytest

from appliance.domain import listing_review, negotiation, product, sync
from appliance.domain.machine import Table
from appliance.errors import IllegalTransition, ListingStateInvalid, UnknownMember


class Light(Enum):
    OFF = "off"
    ON = "on"


class Press(Enum):
    SWITCH = "switch"
    UNPLUG = "unplug"


class Refused(Exception):
    pass


LAMP: Table[Light, Press, str] = Table({
    (Light.OFF, Press.SWITCH): (Light.ON, ("glow",)),
    (Light.ON, Press.SWITCH): (Light.OFF, ()),
    (Light.ON, Press.UNPLUG): (Light.OFF, ("flicker", "dark")),
}, refuse=lambda state, event, **context: Refused(state, event, context))


def test_step_returns_the_next_state_and_the_actions_of_the_row():
    assert LAMP.step(Light.OFF, Press.SWITCH) == (Light.ON, ("glow",))
    assert LAMP.step(Light.ON, Press.UNPLUG) == (Light.OFF, ("flicker", "dark"))


def test_a_pair_outside_the_table_raises_the_tables_error_naming_both_and_the_context():
    with pytest.raises(Refused) as err:
        LAMP.step(Light.OFF, Press.UNPLUG, room="hall")
    assert err.value.args == (Light.OFF, Press.UNPLUG, {"room": "hall"})
    assert err.value.__suppress_context__  # not a KeyError from inside the table
    assert isinstance(LAMP.refuse(Light.ON, Press.SWITCH), Refused)  # the same error for a guard outside it


def test_a_table_answers_what_it_allows_and_cannot_be_changed():
    assert LAMP.allows(Light.ON, Press.UNPLUG) and not LAMP.allows(Light.OFF, Press.UNPLUG)
    assert LAMP.events(Light.ON) == {Press.SWITCH, Press.UNPLUG}
    assert LAMP.sources(Press.UNPLUG) == {Light.ON}
    assert len(LAMP) == 3 and (Light.OFF, Press.SWITCH) in LAMP
    assert LAMP[(Light.ON, Press.SWITCH)] == (Light.OFF, ())
    with pytest.raises(TypeError):
        LAMP._rows[(Light.OFF, Press.UNPLUG)] = (Light.OFF, ())  # type: ignore[index]


def test_step_is_pure():
    before = dict(LAMP)
    for _ in range(3):
        assert LAMP.step(Light.OFF, Press.SWITCH) == (Light.ON, ("glow",))
    assert dict(LAMP) == before


# --- each table ------------------------------------------------------------------------------------


def _walk(table, step, outside, error):
    """Every row of ``table`` through its module's ``step``; then the pair ``outside`` is refused."""
    for (state, event), row in table.items():
        assert step(state, event) == row
    assert not table.allows(*outside)
    with pytest.raises(error) as err:
        step(*outside)
    return err.value


def test_the_sync_link_table():
    e = _walk(sync.TRANSITIONS, sync.step, (sync.LinkState.STOPPED, sync.LinkEvent.CONNECTED),
              sync.IllegalTransition)
    assert str(e) == "sync link: event connected is not allowed in state stopped"


def test_the_negotiation_table():
    e = _walk(negotiation.TRANSITIONS, lambda s, ev: negotiation.step(s, ev, negotiation.SENDER.get(ev)),
              (negotiation.State.AGREED, negotiation.Event.AGREE), IllegalTransition)
    assert e.args == ("ContractAgreementMessage", "AGREED") and e.exit_code == 121


def test_the_product_table():
    e = _walk(product.PRODUCT_TRANSITIONS, lambda s, ev: product.step_product("urn:p", s, ev),
              (product.ProductStatus.DELISTED, product.ProductEvent.WITHDRAWN), ListingStateInvalid)
    assert "urn:p" in e.message("en") and e.exit_code == 76


def test_the_listing_table():
    e = _walk(product.LISTING_TRANSITIONS, lambda s, ev: product.step_listing("urn:p", "space-a", s, ev),
              (product.ListingStatus.REJECTED, product.ListingEvent.ACCEPT), ListingStateInvalid)
    assert "space-a" in e.message("en") and "space-a" in e.message("zh_CN")


def test_the_listing_review_table():
    e = _walk(listing_review.TRANSITIONS, lambda s, ev: listing_review.step(7, s, ev),
              (listing_review.ReviewState.REJECTED, listing_review.ReviewEvent.APPROVE), UnknownMember)
    assert "listing #7 (pending)" in e.message("en") and e.exit_code == 105
    with pytest.raises(UnknownMember):  # no such request at all
        listing_review.step(8, None, listing_review.ReviewEvent.REJECT)
    assert listing_review.TRANSITIONS.sources(listing_review.ReviewEvent.WITHDRAW) == {"pending", "approved"}
