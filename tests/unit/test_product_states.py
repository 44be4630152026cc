"""The product and listing state tables: legal steps, and illegal ones named in both languages."""

from datetime import datetime, timezone

import pytest

from appliance.domain.product import (LISTING_TRANSITIONS, Effect, Listing, ListingEvent, ListingStatus, ProductEvent,
                                      ProductStatus, step_listing, step_product)
from appliance.errors import ListingStateInvalid


def test_the_product_lifecycle_draft_listed_updated_delisted():
    s = ProductStatus.DRAFT
    s, actions = step_product("p", s, ProductEvent.CHANGED)
    assert s is ProductStatus.DRAFT and actions == ()
    s, _ = step_product("p", s, ProductEvent.ACCEPTED)
    assert s is ProductStatus.LISTED
    s, _ = step_product("p", s, ProductEvent.CHANGED)
    assert s is ProductStatus.UPDATED
    s, _ = step_product("p", s, ProductEvent.WITHDRAWN)
    assert s is ProductStatus.DELISTED
    with pytest.raises(ListingStateInvalid):
        step_product("p", s, ProductEvent.WITHDRAWN)


def test_listing_in_a_space_and_what_each_step_sends():
    assert step_listing("p", "s", None, ListingEvent.REQUEST) == (ListingStatus.REQUESTED, (Effect.SEND_REQUEST,))
    assert step_listing("p", "s", ListingStatus.REQUESTED, ListingEvent.ACCEPT) == (ListingStatus.LISTED, ())
    assert step_listing("p", "s", ListingStatus.LISTED, ListingEvent.WITHDRAW) == \
        (ListingStatus.DELISTED, (Effect.SEND_WITHDRAWAL,))
    assert step_listing("p", "s", ListingStatus.DELISTED, ListingEvent.REQUEST)[0] is ListingStatus.REQUESTED


@pytest.mark.parametrize("state, event", [(None, ListingEvent.ACCEPT), (None, ListingEvent.WITHDRAW),
                                          (ListingStatus.DELISTED, ListingEvent.ACCEPT),
                                          (ListingStatus.DELISTED, ListingEvent.WITHDRAW),
                                          (ListingStatus.REJECTED, ListingEvent.WITHDRAW),
                                          (ListingStatus.REJECTED, ListingEvent.ACCEPT)])
def test_an_illegal_step_names_the_state_and_the_event(state, event):
    assert (state, event) not in LISTING_TRANSITIONS
    with pytest.raises(ListingStateInvalid) as e:
        step_listing("urn:dsnode:product:1", "space-a", state, event)
    en, zh = e.value.message("en"), e.value.message("zh_CN")
    assert "urn:dsnode:product:1" in en and "space-a" in en and "space-a" in zh
    assert {ListingEvent.ACCEPT: "accepted", ListingEvent.WITHDRAW: "withdrawn"}[event] in en


def test_an_entry_stays_visible_during_its_notice_period():
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    delisted = Listing("p", "s", ListingStatus.DELISTED, 2, 2, "停止更新", "2026-01-20T00:00:00.000Z")
    assert delisted.visible(now) and not delisted.visible(datetime(2026, 1, 21, tzinfo=timezone.utc))
    assert Listing("p", "s", ListingStatus.REQUESTED, 3, 2).visible(now)  # the accepted version 2 still shows
    assert not Listing("p", "s", ListingStatus.REQUESTED, 1).visible(now)
