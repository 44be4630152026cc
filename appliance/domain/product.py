"""Data products: what a product is, its lifecycle, its listing in each space, its evidence and events.

A product packages pinned resource versions with a description and ODRL offers. Two state tables:

* the product: ``draft -> listed -> updated -> delisted`` (guideline 10.2a: withdrawn with notice);
* its listing in one space: ``requested -> listed | rejected``, ``-> delisted`` (with a notice
  period during which the entry stays visible, marked with the date it disappears).

Both are ``machine.Table``s; ``step_product`` and ``step_listing`` are pure, return the next state
and the actions (``Effect``), and an illegal pair raises ListingStateInvalid naming both. The
diagram is in ``docs/catalog-products.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Never

from appliance.clock import parse_rfc3339
from appliance.domain.machine import Table
from appliance.domain.odrl import Policy
from appliance.errors import ListingStateInvalid, LocalText


class ProductAction(StrEnum):
    """Evidence actions of the products feature."""

    CREATED = "product.created"
    UPDATED = "product.updated"
    OFFER_SET = "offer.set"
    LISTING_REQUESTED = "product.listing_requested"
    LISTED = "product.listed"
    REJECTED = "product.rejected"
    DELISTED = "product.delisted"


class ProductStatus(StrEnum):
    DRAFT = "draft"
    LISTED = "listed"
    UPDATED = "updated"
    DELISTED = "delisted"


class ProductEvent(StrEnum):
    CHANGED = "changed"  # description, resources or offers changed (the version goes up)
    ACCEPTED = "accepted"  # a space listed it
    WITHDRAWN = "withdrawn"  # no space lists it or is asked to any more


def _product_refused(state: ProductStatus, event: ProductEvent, *, product_id: str) -> ListingStateInvalid:
    return ListingStateInvalid(product_id, state_text(state), LocalText("product.space.any"), event_text(event))


_DRAFT, _LISTED, _UPDATED, _DELISTED = (ProductStatus.DRAFT, ProductStatus.LISTED, ProductStatus.UPDATED,
                                        ProductStatus.DELISTED)
PRODUCT_TRANSITIONS: Table[ProductStatus, ProductEvent, Never] = Table({
    (_DRAFT, ProductEvent.CHANGED): (_DRAFT, ()),
    (_DRAFT, ProductEvent.ACCEPTED): (_LISTED, ()),
    (_DRAFT, ProductEvent.WITHDRAWN): (_DRAFT, ()),  # a pending request taken back
    (_LISTED, ProductEvent.CHANGED): (_UPDATED, ()),
    (_LISTED, ProductEvent.ACCEPTED): (_LISTED, ()),
    (_LISTED, ProductEvent.WITHDRAWN): (_DELISTED, ()),
    (_UPDATED, ProductEvent.CHANGED): (_UPDATED, ()),
    (_UPDATED, ProductEvent.ACCEPTED): (_LISTED, ()),
    (_UPDATED, ProductEvent.WITHDRAWN): (_DELISTED, ()),
    (_DELISTED, ProductEvent.CHANGED): (_DELISTED, ()),
    (_DELISTED, ProductEvent.ACCEPTED): (_LISTED, ()),
}, refuse=_product_refused)


class ListingStatus(StrEnum):
    REQUESTED = "requested"
    LISTED = "listed"
    REJECTED = "rejected"
    DELISTED = "delisted"


class ListingEvent(StrEnum):
    REQUEST = "request"  # the provider asks the space to list (this version of) the product
    ACCEPT = "accept"  # the operator listed it
    REJECT = "reject"  # the operator refused it, or took it down
    WITHDRAW = "withdraw"  # the provider delists it (with notice)


class Effect(StrEnum):
    """What the service does besides storing the new state."""

    SEND_REQUEST = "send_request"  # emit ListingRequested (space sync sends it to the operator)
    SEND_WITHDRAWAL = "send_withdrawal"  # emit ListingWithdrawn


def _listing_refused(state: ListingStatus | None, event: ListingEvent, *, product_id: str,
                     space_id: str) -> ListingStateInvalid:
    return ListingStateInvalid(product_id, state_text(state), space_id, event_text(event))


_R, _L, _J, _D = ListingStatus.REQUESTED, ListingStatus.LISTED, ListingStatus.REJECTED, ListingStatus.DELISTED
LISTING_TRANSITIONS: Table[ListingStatus | None, ListingEvent, Effect] = Table({
    (None, ListingEvent.REQUEST): (_R, (Effect.SEND_REQUEST,)),
    (_R, ListingEvent.REQUEST): (_R, (Effect.SEND_REQUEST,)),  # again, e.g. for a new version
    (_R, ListingEvent.ACCEPT): (_L, ()),
    (_R, ListingEvent.REJECT): (_J, ()),
    (_R, ListingEvent.WITHDRAW): (_D, (Effect.SEND_WITHDRAWAL,)),
    (_L, ListingEvent.REQUEST): (_R, (Effect.SEND_REQUEST,)),  # a changed product goes back for review
    (_L, ListingEvent.ACCEPT): (_L, ()),  # the same answer twice
    (_L, ListingEvent.REJECT): (_J, ()),  # the operator took it down (guideline 8.2.3 g)
    (_L, ListingEvent.WITHDRAW): (_D, (Effect.SEND_WITHDRAWAL,)),
    (_J, ListingEvent.REQUEST): (_R, (Effect.SEND_REQUEST,)),
    (_J, ListingEvent.REJECT): (_J, ()),
    (_D, ListingEvent.REQUEST): (_R, (Effect.SEND_REQUEST,)),
}, refuse=_listing_refused)


def step_product(product_id: str, state: ProductStatus, event: ProductEvent) -> tuple[ProductStatus, tuple[Never, ...]]:
    """The product's next status (no actions: its listings carry them)."""
    return PRODUCT_TRANSITIONS.step(state, event, product_id=product_id)


def step_listing(product_id: str, space_id: str, state: ListingStatus | None,
                 event: ListingEvent) -> tuple[ListingStatus, tuple[Effect, ...]]:
    """The listing's next status in ``space_id`` (None: never asked) and what to send."""
    new, effects = LISTING_TRANSITIONS.step(state, event, product_id=product_id, space_id=space_id)
    assert new is not None  # no move leads back to "never asked"
    return new, effects


def state_text(state: str | None) -> LocalText:
    return LocalText(f"product.state.{state or 'none'}")


def event_text(event: str) -> LocalText:
    return LocalText(f"product.event.{event}")


# --- what a product is --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourcePin:
    """One resource version a product is made from (a lineage link)."""

    resource_id: str
    version: int
    title: str = ""
    kind: str = ""
    sha256: str | None = None
    size: int | None = None
    row_count: int | None = None
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Offer:
    uid: str
    policy: Policy
    template: str | None = None
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Listing:
    product_id: str
    space_id: str
    status: ListingStatus
    version: int  # the product version last sent to the space
    listed_version: int | None = None  # the version the space accepted and still shows
    reason: str = ""
    notice_until: str | None = None
    updated: str = ""

    def visible(self, now: datetime) -> bool:
        """Whether the space shows the entry: listed (an accepted version, while a newer one is reviewed),
        or delisted but inside its notice period."""
        if self.status is ListingStatus.DELISTED:
            return self.notice_until is not None and self.notice_until != "" \
                and now < parse_rfc3339(self.notice_until)
        return self.listed_version is not None


@dataclass(frozen=True)
class Product:
    id: str
    version: int
    status: ProductStatus
    title: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    domain: str = ""
    created: str = ""
    updated: str = ""
    resources: tuple[ResourcePin, ...] = ()
    offers: tuple[Offer, ...] = ()
    listings: tuple[Listing, ...] = ()


@dataclass(frozen=True)
class LineageLink:
    """Product ``product_id`` (version ``product_version``) derives from ``resource_id`` version ``version``."""

    product_id: str
    product_version: int
    product_title: str
    resource_id: str
    version: int
    current: bool  # whether ``product_version`` is the product's current version


# --- events on node.bus (emitted after the change is committed) ---------------------------------


@dataclass(frozen=True)
class ListingRequested:
    """Ask ``space_id``'s operator to list the product: send ``dataset`` (DCAT JSON-LD, DSP 2025-1)."""

    product_id: str
    space_id: str
    version: int
    dataset: dict


@dataclass(frozen=True)
class ListingWithdrawn:
    """The provider delists the product in ``space_id``; the entry may show until ``notice_until``."""

    product_id: str
    space_id: str
    notice_until: str
    reason: str
    dataset: dict  # the entry with ``dct:valid`` set to the end of the notice period


@dataclass(frozen=True)
class ProductChanged:
    """Any change to a product (for the GUI to refresh)."""

    product_id: str
    version: int
    status: str
