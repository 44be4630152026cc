"""Listings in the space catalog, on the provider side: a listing request goes to the operator; its
signed approval comes back and the entry is published (retained) with it; withdrawal clears it."""

from __future__ import annotations

import json
import logging

from appliance.crypto.statement import entry_sha256
from appliance.domain.membership import Action, ListingDecided, Listing, MessageType
from appliance.services.membership.statements import check_listing_approval
from appliance.errors import ApplianceError
from appliance.services.membership.base import CATALOG_ENTRY, MembershipBase, _body

log = logging.getLogger("appliance.services.membership")


class ListingClient(MembershipBase):
    def attach_listings(self, sync) -> None:
        sync.on(str(MessageType.LISTING_APPROVED), self._on_listing_approved)
        sync.on(str(MessageType.LISTING_REJECTED), self._on_listing_rejected)

    def connect_products(self, products) -> None:
        """Serve the catalog's listing requests: its events go to the operator, answers come back."""
        from appliance.domain.product import ListingRequested, ListingWithdrawn

        self._products = products
        products.set_membership(self.is_member)
        self._bus.subscribe(self._on_product_listing, ListingRequested)
        self._bus.subscribe(self._on_product_withdrawn, ListingWithdrawn)

    def _on_product_listing(self, event) -> None:
        if not self.is_member(event.space_id):
            log.info("listing request for %s waits: not a member of that space", event.space_id)
            return
        dataset = event.dataset
        self.request_listing(event.space_id, event.product_id, dataset, version=event.version,
                             pricing=dataset.get("hasPolicy"), compliance=dataset.get("dsnode:compliance"))

    def _on_product_withdrawn(self, event) -> None:
        if self.is_member(event.space_id):
            self.withdraw_listing(event.space_id, event.product_id)

    def _tell_products(self, space_id: str, dataset_id: str, version: int | None, status: str,
                       reason: str = "") -> None:
        if self._products is None or version is None:
            return
        try:
            self._products.mark_listing(dataset_id, space_id, status, reason, version=version)
        except ApplianceError as e:
            log.warning("the catalog did not take the listing answer for %s: %s", dataset_id, e.message("en"))

    def request_listing(self, space_id: str, dataset_id: str, entry: dict, *, pricing: object = None,
                        compliance: object = None, version: int | None = None, conn=None) -> str:
        """Ask the operator to list ``entry`` (DCAT dataset + ODRL offers) in the space catalog."""
        if not dataset_id or "/" in dataset_id or "+" in dataset_id or "#" in dataset_id:
            raise ValueError(f"dataset id {dataset_id!r} cannot be part of a topic")

        def work(c) -> str:
            space = self._require(space_id)
            c.execute("INSERT INTO membership_listing (space_id, dataset_id, status, entry, version, updated) "
                      "VALUES (?, ?, 'requested', ?, ?, ?) ON CONFLICT (space_id, dataset_id) DO UPDATE SET "
                      "status = 'requested', entry = excluded.entry, version = excluded.version, approval = NULL, "
                      "reason = NULL, updated = excluded.updated",
                      (space_id, dataset_id, json.dumps(entry, ensure_ascii=False), version, self._now()))
            self._evidence.append(c, action=str(Action.LISTING_REQUESTED), subject=dataset_id,
                                  payload={"space": space_id, "entry_sha256": entry_sha256(entry)})
            return self._sync.send(c, space_id, to=space.operator_did, type=str(MessageType.LISTING_REQUEST),
                                   body={"dataset_id": dataset_id, "entry": entry, "pricing": pricing,
                                         "compliance": compliance})

        return work(conn) if conn is not None else self._db.write(work)

    def withdraw_listing(self, space_id: str, dataset_id: str, *, conn=None) -> None:
        """Take a dataset out of the space catalog (the retained entry is cleared)."""
        def work(c) -> None:
            space = self._require(space_id)
            self._clear_entry(c, space_id, dataset_id, "withdrawn")
            self._sync.send(c, space_id, to=space.operator_did, type=str(MessageType.LISTING_WITHDRAWN),
                            body={"dataset_id": dataset_id})
            self._evidence.append(c, action=str(Action.LISTING_WITHDRAWN), subject=dataset_id,
                                  payload={"space": space_id})

        work(conn) if conn is not None else self._db.write(work)

    def listings(self, space_id: str | None = None) -> list[Listing]:
        sql = "SELECT space_id, dataset_id, status, reason, approval FROM membership_listing"
        args: tuple = ()
        if space_id:
            sql, args = sql + " WHERE space_id = ?", (space_id,)
        rows = self._db.read(lambda c: c.execute(sql + " ORDER BY space_id, dataset_id", args).fetchall())
        return [Listing(s, d, st, r, json.loads(a) if a else None) for s, d, st, r, a in rows]

    def _on_listing_approved(self, conn, msg) -> None:
        space = self._from_operator(conn, msg)
        if space is None:
            return
        body = _body(msg)
        dataset_id = str(body.get("dataset_id"))
        row = conn.execute("SELECT entry, status, version FROM membership_listing "
                           "WHERE space_id = ? AND dataset_id = ?", (space.space_id, dataset_id)).fetchone()
        if row is None or row[1] != "requested":
            return
        entry, version = json.loads(row[0]), row[2]
        approval = check_listing_approval(body.get("approval"), space_id=space.space_id,
                                          operator_did=space.operator_did, provider=self.did, dataset_id=dataset_id,
                                          entry=entry)
        conn.execute("UPDATE membership_listing SET status = 'approved', approval = ?, updated = ? "
                     "WHERE space_id = ? AND dataset_id = ?",
                     (json.dumps(approval), self._now(), space.space_id, dataset_id))
        self._sync.publish(conn, space.space_id, topic=f"catalog/{self.did}/{dataset_id}", type=CATALOG_ENTRY,
                           body={"dataset_id": dataset_id, "entry": entry, "approval": approval}, retained=True)
        self._evidence.append(conn, action=str(Action.LISTING_APPROVED), subject=dataset_id,
                              payload={"space": space.space_id, "entry_sha256": approval["entry_sha256"]})
        self._tell_products(space.space_id, dataset_id, version, "listed")
        self._emit_after_commit(ListingDecided(space.space_id, dataset_id, True))

    def _on_listing_rejected(self, conn, msg) -> None:
        space = self._from_operator(conn, msg)
        if space is None:
            return
        body = _body(msg)
        dataset_id, reason = str(body.get("dataset_id")), str(body.get("reason") or "")[:500]
        changed = conn.execute("UPDATE membership_listing SET status = 'rejected', reason = ?, updated = ? "
                               "WHERE space_id = ? AND dataset_id = ? AND status = 'requested'",
                               (reason, self._now(), space.space_id, dataset_id)).rowcount
        if changed:
            self._evidence.append(conn, action=str(Action.LISTING_REJECTED), subject=dataset_id,
                                  payload={"space": space.space_id, "reason": reason})
            version = conn.execute("SELECT version FROM membership_listing WHERE space_id = ? AND dataset_id = ?",
                                   (space.space_id, dataset_id)).fetchone()[0]
            self._tell_products(space.space_id, dataset_id, version, "rejected", reason)
            self._emit_after_commit(ListingDecided(space.space_id, dataset_id, False, reason))
