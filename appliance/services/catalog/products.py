"""Data products: packaging resource versions with a description and offers, and listing them in spaces.

``node.products`` is this service. Every change runs in one write transaction with its evidence
entry; events go out on ``node.bus`` after the commit:

* ``create`` pins each resource's current version (lineage), ``update``/``set_offers`` make a new
  product version (a listed product becomes ``updated`` and goes back to its spaces for review);
* ``request_listing`` records the request and emits ``ListingRequested`` with the DCAT dataset
  (space sync sends it to the operator); ``mark_listing`` is how sync reports the answer;
* ``delist`` withdraws with a notice period (guideline 10.2 a) and emits ``ListingWithdrawn``.

Whether the node has joined a space is space sync's knowledge: it hands it over with
``set_membership``. Until then no space counts as joined.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from appliance import dsp_schema
from appliance.clock import Clock, rfc3339
from appliance.crypto.jcs import canonical
from appliance.domain import dcat, odrl
from appliance.domain.product import (LISTING_TRANSITIONS, PRODUCT_TRANSITIONS, Effect, LineageLink, Listing,
                                      ListingEvent, ListingRequested, ListingStatus, ListingWithdrawn, Offer, Product,
                                      ProductAction, ProductChanged, ProductEvent, ProductStatus, ResourcePin,
                                      step_listing, step_product)
from appliance.errors import (LocalText, NotInSpace, ProductError, ProductNotFound, ProductNotListed, ProductNotReady,
                              ResourceNotUsable)
from appliance.events import EventBus
from appliance.services.catalog import product_rows as rows
from appliance.services.catalog.offers import OfferTemplates
from appliance.services.evidence import EvidenceLog
from appliance.storage.database import Database

log = logging.getLogger(__name__)

ACTIVE = (ListingStatus.REQUESTED, ListingStatus.LISTED)
DEFAULT_NOTICE_DAYS = 30


def _new_uuid() -> str:
    return str(uuid.uuid4())


def _sha256(doc: object) -> str:
    return hashlib.sha256(canonical(doc)).hexdigest()


class ProductService:
    def __init__(self, db: Database, evidence: EvidenceLog, clock: Clock, bus: EventBus, *, node_did: str,
                 templates: OfferTemplates | None = None, new_id: Callable[[], str] = _new_uuid) -> None:
        self._db = db
        self._evidence = evidence
        self._clock = clock
        self._bus = bus
        self._node_did = node_did
        self._new_id = new_id
        self._joined: Callable[[str], bool] | None = None
        self.templates = templates or OfferTemplates()

    def set_membership(self, joined: Callable[[str], bool] | None) -> None:
        """Space sync tells the service how to know whether this node has joined a space."""
        self._joined = joined

    # --- offers -------------------------------------------------------------------------------

    def offer_from_template(self, template_id: str, params: dict | None = None) -> Offer:
        return self.templates.offer(template_id, params or {}, rows.OFFER_URN + self._new_id())

    def offer_from_jsonld(self, doc: dict) -> Offer:
        """An offer from an ODRL policy document (a fresh ``@id`` if it has none); PolicyInvalid if wrong."""
        doc = dict(doc)
        if not doc.get("@id") and not doc.get("uid"):
            doc["@id"] = rows.OFFER_URN + self._new_id()
        policy = dataclasses.replace(odrl.parse(doc), type="Offer", target=None)
        return Offer(policy.uid, policy)

    # --- creating and changing ----------------------------------------------------------------

    def create(self, *, title: str, resource_ids: Sequence[str], description: str = "",
               keywords: Iterable[str] = (), domain: str = "", offers: Sequence[Offer] = ()) -> Product:
        """A draft product from the current versions of ``resource_ids`` (ids or unique id prefixes)."""
        title = title.strip()
        if not title:
            raise ProductError(LocalText("product.reason.no_title"))
        if not resource_ids:
            raise ProductError(LocalText("product.reason.no_resources"))
        ts = self._now()
        product_id = rows.PRODUCT_URN + self._new_id()

        def work(conn) -> Product:
            p = Product(product_id, 1, ProductStatus.DRAFT, title, description.strip(), _clean(keywords),
                        domain.strip(), ts, ts, self._pin(conn, resource_ids),
                        self._checked_offers(conn, offers, product_id))
            rows.insert_product(conn, p)
            rows.write_version(conn, p, ts)
            self._evidence.append(conn, action=ProductAction.CREATED, subject=p.id, payload={
                "title": p.title, "version": 1, "resources": _pins_json(p.resources),
                "offers": [o.uid for o in p.offers]})
            if p.offers:
                self._offer_evidence(conn, p)
            return self._load(conn, product_id)

        product = self._db.write(work)
        self._bus.emit(ProductChanged(product.id, product.version, product.status))
        return product

    def update(self, product_id: str, *, title: str | None = None, description: str | None = None,
               keywords: Iterable[str] | None = None, domain: str | None = None,
               resource_ids: Sequence[str] | None = None, repin: bool = False) -> Product:
        """A new version: changed description, or resources pinned again at their current versions
        (``resource_ids`` replaces the set; ``repin`` re-pins the same resources)."""
        given = (("title", title), ("description", description), ("domain", domain))
        changes: dict[str, Any] = {k: v for k, v in given if v is not None}
        if title is not None and not title.strip():
            raise ProductError(LocalText("product.reason.no_title"))
        if keywords is not None:
            changes["keywords"] = _clean(keywords)
        if not changes and resource_ids is None and not repin:
            raise ProductError(LocalText("product.reason.nothing_to_change"))

        def mutate(conn, p: Product) -> tuple[Product, dict]:
            stripped: dict[str, Any] = {k: v.strip() if isinstance(v, str) else v for k, v in changes.items()}
            new = dataclasses.replace(p, **stripped)
            detail: dict = {"changed": sorted(changes)}
            if resource_ids is not None or repin:
                refs = resource_ids if resource_ids is not None else [r.resource_id for r in p.resources]
                if not refs:
                    raise ProductError(LocalText("product.reason.no_resources"))
                new = dataclasses.replace(new, resources=self._pin(conn, refs))
                detail["changed"].append("resources")
                detail["resources"] = _pins_json(new.resources)
            return new, detail

        return self._change(product_id, mutate, ProductAction.UPDATED)

    def set_offers(self, product_id: str, offers: Sequence[Offer]) -> Product:
        """Replace the product's offers (a new version; evidence ``offer.set``)."""
        def mutate(conn, p: Product) -> tuple[Product, dict]:
            return dataclasses.replace(p, offers=self._checked_offers(conn, offers, p.id)), {}

        return self._change(product_id, mutate, ProductAction.OFFER_SET)

    def add_offer(self, product_id: str, offer: Offer) -> Product:
        return self.set_offers(product_id, [*self.get(product_id).offers, offer])

    def remove_offer(self, product_id: str, uid: str) -> Product:
        current = self.get(product_id).offers
        if uid not in {o.uid for o in current}:
            raise ProductError(LocalText("product.reason.no_offer", uid))
        return self.set_offers(product_id, [o for o in current if o.uid != uid])

    def _change(self, product_id: str, mutate, action: ProductAction) -> Product:
        ts = self._now()
        out: list = []

        def work(conn) -> Product:
            p = self._load(conn, product_id)
            new, detail = mutate(conn, p)
            status, _ = step_product(p.id, p.status, ProductEvent.CHANGED)
            new = dataclasses.replace(new, version=p.version + 1, status=status, updated=ts)
            active = [x for x in p.listings if x.status in ACTIVE]
            if active:
                self._ready(conn, new)
            rows.update_product(conn, new)
            rows.write_version(conn, new, ts)
            if action is ProductAction.OFFER_SET:
                self._offer_evidence(conn, new)
            else:
                self._evidence.append(conn, action=action, subject=p.id, payload={"version": new.version, **detail})
            new = self._load(conn, p.id)
            for listing in active:  # a listed product goes back to its spaces for review
                out.extend(self._request(conn, new, listing.space_id, ts))
            return self._load(conn, p.id)

        product = self._db.write(work)
        self._emit(out, product)
        return product

    # --- reading ------------------------------------------------------------------------------

    def resolve(self, ref: str) -> str:
        """The product id that ``ref`` (an id or a unique prefix of one) names."""
        found = self._db.read(lambda c: rows.resolve(c, "product", rows.PRODUCT_URN, ref))
        if not found:
            raise ProductNotFound(ref)
        if len(found) > 1:
            raise ProductError(LocalText("product.reason.ambiguous", ref))
        return found[0]

    def get(self, product_id: str, version: int | None = None) -> Product:
        """The product (resources of ``version``, the current one by default)."""
        product_id = self.resolve(product_id)
        return self._db.read(lambda c: self._load(c, product_id, version))

    def list(self, status: str | None = None) -> list[Product]:
        return self._db.read(lambda c: [self._load(c, pid) for pid in rows.product_ids(c, status)])

    def lineage(self, resource_id: str, *, version: int | None = None) -> builtins.list[LineageLink]:
        """Which products (and product versions) were made from ``resource_id`` (``version`` only)."""
        return self._db.read(lambda c: rows.lineage(c, resource_id, version))

    def derived_from(self, product_id: str, version: int | None = None) -> tuple[ResourcePin, ...]:
        """The resource versions the product (``version``, the current one by default) was made from."""
        return self.get(product_id, version).resources

    def dataset(self, product_id: str) -> dict:
        """The product as a DSP 2025-1 DCAT ``Dataset`` (JSON-LD)."""
        return dcat.dataset(self.get(product_id), self._node_did)

    def listings(self, status: str | None = None) -> builtins.list[Listing]:
        return self._db.read(lambda c: rows.all_listings(c, status))

    def pending_requests(self) -> builtins.list[ListingRequested]:
        """Listing requests not answered yet, as events (for space sync to re-send after a restart)."""
        return [ListingRequested(x.product_id, x.space_id, x.version, self.dataset(x.product_id))
                for x in self.listings(ListingStatus.REQUESTED)]

    # --- listing ------------------------------------------------------------------------------

    def request_listing(self, product_id: str, space_id: str) -> Listing:
        """Ask space ``space_id`` to list the product (NotInSpace if this node has not joined it)."""
        product_id = self.resolve(product_id)
        if self._joined is None or not self._joined(space_id):
            raise NotInSpace(space_id)
        ts = self._now()
        out: list = []

        def work(conn) -> Listing:
            p = self._load(conn, product_id)
            current = rows.listing(conn, p.id, space_id)
            if current and current.status is ListingStatus.LISTED and current.version == p.version:
                # the same version again: a guard the table cannot see, refused in the table's words
                raise LISTING_TRANSITIONS.refuse(current.status, ListingEvent.REQUEST, product_id=p.id,
                                                 space_id=space_id)
            self._ready(conn, p)
            out.extend(self._request(conn, p, space_id, ts))
            listing = rows.listing(conn, p.id, space_id)
            assert listing is not None  # _request saved it
            return listing

        listing = self._db.write(work)
        self._emit(out, self.get(product_id))
        return listing

    def mark_listing(self, product_id: str, space_id: str, status: str, reason: str = "",
                     version: int | None = None) -> Listing:
        """The operator's answer (``listed`` or ``rejected``), reported by space sync.

        An answer about an older version than the one last sent is stale and changes nothing.
        """
        event = {ListingStatus.LISTED: ListingEvent.ACCEPT, ListingStatus.REJECTED: ListingEvent.REJECT}.get(
            ListingStatus(status))
        if event is None:
            raise ValueError(f"an operator answers 'listed' or 'rejected', not {status!r}")
        product_id = self.resolve(product_id)
        ts = self._now()

        def work(conn) -> Listing:
            p = self._load(conn, product_id)
            current = rows.listing(conn, p.id, space_id)
            if current is not None and version is not None and version != current.version:
                log.info("ignoring a stale listing answer for version %s (latest sent: %s)", version, current.version)
                return current
            new_state, _ = step_listing(p.id, space_id, current.status if current else None, event)
            assert current is not None  # the table refuses an answer to a listing never asked for
            shown = current.version if event is ListingEvent.ACCEPT else None
            new = Listing(p.id, space_id, new_state, current.version, shown, reason.strip(), None, ts)
            rows.save_listing(conn, new)
            action = ProductAction.LISTED if event is ListingEvent.ACCEPT else ProductAction.REJECTED
            self._evidence.append(conn, action=action, subject=p.id,
                                  payload={"space": space_id, "version": new.version, "reason": new.reason})
            if event is ListingEvent.ACCEPT:
                rows.set_status(conn, p.id, step_product(p.id, p.status, ProductEvent.ACCEPTED)[0], ts)
            else:
                self._withdrawn_everywhere(conn, p, ts)
            return new

        listing = self._db.write(work)
        self._emit([], self.get(product_id))
        return listing

    def delist(self, product_id: str, space_id: str | None = None, *, reason: str,
               notice_days: int = DEFAULT_NOTICE_DAYS) -> builtins.list[Listing]:
        """Withdraw the product from ``space_id`` (every space when None). A listed entry stays visible,
        marked with its end date, for ``notice_days``; a request not yet answered is simply taken back."""
        reason = reason.strip()
        if not reason:
            raise ProductError(LocalText("product.reason.no_reason"))
        if notice_days < 0:
            raise ProductError(LocalText("product.reason.notice_negative"))
        product_id = self.resolve(product_id)
        now = self._clock.now()
        ts, notice_end = rfc3339(now), rfc3339(now + timedelta(days=notice_days))
        out: list = []

        def work(conn) -> list[Listing]:
            p = self._load(conn, product_id)
            targets = [x for x in p.listings if x.status in ACTIVE and space_id in (None, x.space_id)]
            if not targets:
                x = rows.listing(conn, p.id, space_id) if space_id is not None else None
                if x is not None:  # a listing this does not apply to: the table says why
                    step_listing(p.id, x.space_id, x.status, ListingEvent.WITHDRAW)
                where = LocalText("product.space.in", space_id) if space_id else LocalText("product.space.anywhere")
                raise ProductNotListed(p.id, where)
            done = []
            for x in targets:
                new_state, effects = step_listing(p.id, x.space_id, x.status, ListingEvent.WITHDRAW)
                until = notice_end if x.listed_version is not None else ts  # never shown: no notice needed
                new = Listing(p.id, x.space_id, new_state, x.version, x.listed_version, reason, until, ts)
                rows.save_listing(conn, new)
                self._evidence.append(conn, action=ProductAction.DELISTED, subject=p.id, payload={
                    "space": x.space_id, "version": x.version, "notice_until": until, "reason": reason})
                if Effect.SEND_WITHDRAWAL in effects:
                    out.append(ListingWithdrawn(p.id, x.space_id, until, reason,
                                                dcat.dataset(p, self._node_did, valid_until=until)))
                done.append(new)
            self._withdrawn_everywhere(conn, p, ts)
            return done

        done = self._db.write(work)
        self._emit(out, self.get(product_id))
        return done

    # --- helpers ------------------------------------------------------------------------------

    def _now(self) -> str:
        return rfc3339(self._clock.now())

    def _load(self, conn, product_id: str, version: int | None = None) -> Product:
        p = rows.load(conn, product_id, version)
        if p is None:
            raise ProductNotFound(product_id)
        return p

    def _pin(self, conn, refs: Sequence[str]) -> tuple[ResourcePin, ...]:
        pins: dict[str, ResourcePin] = {}
        for ref in refs:
            found = rows.resolve(conn, "resource", rows.RESOURCE_URN, ref)
            if len(found) != 1:
                raise ResourceNotUsable(ref, LocalText("product.reason.resource_missing" if not found
                                                       else "product.reason.resource_ambiguous"))
            rid = found[0]
            state = rows.resource_state(conn, rid)
            assert state is not None  # resolve found it
            removed, version, has_version = state
            if removed:
                raise ResourceNotUsable(rid, LocalText("product.reason.resource_removed"))
            if not has_version:
                raise ResourceNotUsable(rid, LocalText("product.reason.resource_no_version"))
            pins[rid] = ResourcePin(rid, version)
        return tuple(pins[k] for k in sorted(pins))

    def _checked_offers(self, conn, offers: Sequence[Offer], product_id: str) -> tuple[Offer, ...]:
        seen = set()
        for o in offers:
            odrl.check(o.policy)
            if o.uid in seen or rows.offer_uid_taken(conn, o.uid, product_id):
                raise ProductError(LocalText("product.reason.offer_uid_taken", o.uid))
            seen.add(o.uid)
        return tuple(offers)

    def _offer_evidence(self, conn, p: Product) -> None:
        self._evidence.append(conn, action=ProductAction.OFFER_SET, subject=p.id, payload={
            "version": p.version,
            "offers": [{"uid": o.uid, "template": o.template, "params": o.params,
                        "sha256": _sha256(odrl.to_jsonld(o.policy))} for o in p.offers]})

    def _ready(self, conn, p: Product) -> None:
        """ProductNotReady unless the product can be a catalog entry: offers, delivery, live resources."""
        if not p.offers:
            raise ProductNotReady(p.id, LocalText("product.reason.no_offers"))
        if not dcat.formats(p):
            raise ProductNotReady(p.id, LocalText("product.reason.no_permission"))
        for pin in p.resources:
            state = rows.resource_state(conn, pin.resource_id)
            if state is None or state[0]:
                raise ProductNotReady(p.id, LocalText("product.reason.resource_gone", pin.resource_id))

    def _request(self, conn, p: Product, space_id: str, ts: str) -> builtins.list[ListingRequested]:
        current = rows.listing(conn, p.id, space_id)
        new_state, effects = step_listing(p.id, space_id, current.status if current else None, ListingEvent.REQUEST)
        shown = current.listed_version if current and current.status is not ListingStatus.DELISTED else None
        rows.save_listing(conn, Listing(p.id, space_id, new_state, p.version, shown, "", None, ts))
        dataset = dcat.dataset(p, self._node_did)
        problems = dsp_schema.problems(dataset, dsp_schema.DATASET)
        if problems:  # our own mapping produced an invalid entry: a bug, never the user's fault
            raise RuntimeError(f"catalog entry of {p.id} does not validate: {problems[:3]}")
        self._evidence.append(conn, action=ProductAction.LISTING_REQUESTED, subject=p.id, payload={
            "space": space_id, "version": p.version, "dataset_sha256": _sha256(dataset)})
        return [ListingRequested(p.id, space_id, p.version, dataset)] if Effect.SEND_REQUEST in effects else []

    def _withdrawn_everywhere(self, conn, p: Product, ts: str) -> None:
        """If no space lists the product or is asked to any more, the product is withdrawn."""
        if any(x.status in ACTIVE for x in rows.listings(conn, p.id)):
            return
        status = self._load(conn, p.id).status
        if PRODUCT_TRANSITIONS.allows(status, ProductEvent.WITHDRAWN):  # (delisted already: nothing to do)
            rows.set_status(conn, p.id, step_product(p.id, status, ProductEvent.WITHDRAWN)[0], ts)

    def _emit(self, events: builtins.list, product: Product) -> None:
        for event in events:
            self._bus.emit(event)
        self._bus.emit(ProductChanged(product.id, product.version, product.status))


def _clean(keywords: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(k.strip() for k in keywords if k and k.strip()))


def _pins_json(pins: Iterable[ResourcePin]) -> list[dict]:
    return [{"id": p.resource_id, "version": p.version} for p in pins]
