"""Data demands (供需撮合): a consumer publishes what data it needs; providers browse open demands,
see which of their own listings match, and answer with an offer (a provider-initiated negotiation).

A demand is part of the space's retained state: the publisher sends it to the operator
(``dsnode.demand.submit``, through the outbox, so it works offline), which publishes it retained on
``operator/demands/<uuid>``; every member, including one that joins later, receives all open demands
when it subscribes. Withdrawal (``dsnode.demand.close`` to the operator) and expiry clear the
retained message, which closes the demand at every member (appliance/operator/demands.py).
"""

from __future__ import annotations

import builtins
import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from appliance.clock import Clock, rfc3339
from appliance.domain.contracts import Action
from appliance.domain.membership import MessageType
from appliance.errors import ContractError, LocalText, NotInSpace
from appliance.services.contracts.negotiation import ContractService
from appliance.services.evidence import EvidenceLog
from appliance.services.sync import SyncService
from appliance.storage.database import Database

SUBMIT = str(MessageType.DEMAND_SUBMIT)
CLOSE = str(MessageType.DEMAND_CLOSE)
TOPIC_FILTER = "operator/demands/+"
FIELDS = ("title", "purpose", "period", "budget", "contact", "keywords", "columns", "domain")


@dataclass(frozen=True)
class Demand:
    id: str
    space_id: str
    owner: str
    title: str
    status: str
    expires: str | None
    detail: dict  # purpose, period, budget, contact policy, keywords, columns, domain


@dataclass(frozen=True)
class Match:
    demand_id: str
    dataset_id: str
    score: int
    shared: tuple[str, ...]  # the words both have


def _words(*values) -> set[str]:
    out: set[str] = set()
    for v in values:
        for item in (v if isinstance(v, (list, tuple)) else [v]):
            if isinstance(item, str):
                out |= {w.lower() for w in re.split(r"[\s,;，；、/]+", item) if len(w) >= 2}
    return out


class DemandService:
    def __init__(self, db: Database, evidence: EvidenceLog, clock: Clock, sync: SyncService,
                 contracts: ContractService) -> None:
        self.db = db
        self._evidence = evidence
        self.clock = clock
        self.sync = sync
        self._contracts = contracts
        self.did = sync.node_did
        sync.on_topic(TOPIC_FILTER, self._on_retained)

    def publish(self, space_id: str, title: str, *, ttl: timedelta = timedelta(days=30), **detail) -> str:
        unknown = set(detail) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown demand field(s): {', '.join(sorted(unknown))}")
        demand_id = f"urn:demand:{uuid.uuid4()}"
        expires = rfc3339(self.clock.now() + ttl)
        body = {"id": demand_id, "title": title, "expires": expires, **detail}

        def write(conn) -> str:
            self._save(conn, space_id, self.did, body)
            self.sync.send(conn, space_id, to=self._operator(conn, space_id), type=SUBMIT, body={"demand": body})
            self._evidence.append(conn, action=Action.DEMAND_PUBLISHED, subject=demand_id,
                                  payload={"space": space_id, "title": title})
            return demand_id

        return self.db.write(write)

    def withdraw(self, demand_id: str) -> None:
        def write(conn) -> None:
            d = self._get(conn, demand_id)
            if d.owner != self.did or d.status != "open":
                raise ContractError(LocalText("contract.reason.demand_not_ours", demand_id))
            conn.execute("UPDATE contract_demand SET status = 'withdrawn', updated = ? WHERE id = ?",
                         (self._now(), demand_id))
            self.sync.send(conn, d.space_id, to=self._operator(conn, d.space_id), type=CLOSE, body={"id": demand_id})
            self._evidence.append(conn, action=Action.DEMAND_WITHDRAWN, subject=demand_id,
                                  payload={"space": d.space_id})

        self.db.write(write)

    def list(self, space_id: str | None = None, *, status: str | None = "open") -> list[Demand]:
        now = self._now()

        def read(conn) -> list[Demand]:
            rows = conn.execute("SELECT id, space_id, owner, demand, status, expires FROM contract_demand "
                                "ORDER BY updated, id").fetchall()
            out = []
            for i, s, owner, doc, st, expires in rows:
                if st == "open" and expires and expires <= now:
                    st = "expired"
                if (space_id and s != space_id) or (status and st != status):
                    continue
                detail = json.loads(doc)
                out.append(Demand(i, s, owner, detail.get("title", ""), st, expires,
                                  {k: detail[k] for k in FIELDS if k in detail and k != "title"}))
            return out

        return self.db.read(read)

    def matches(self, space_id: str) -> builtins.list[Match]:
        """Open demands of others that this node's listings in ``space_id`` could serve, best first."""
        listings = self.db.read(lambda c: c.execute(
            "SELECT dataset_id, entry FROM membership_listing WHERE space_id = ? AND status IN ('requested', "
            "'approved')", (space_id,)).fetchall())
        out = []
        for d in self.list(space_id):
            if d.owner == self.did:
                continue
            want = _words(d.title, d.detail.get("keywords"), d.detail.get("columns"), d.detail.get("domain"))
            for dataset_id, entry in listings:
                e = json.loads(entry)
                have = _words(*(e.get(k) for k in ("dct:title", "title", "dcat:keyword", "keyword", "dcat:theme",
                                                   "domain", "dsnode:domain", "dsnode:columns", "dct:description")))
                shared = tuple(sorted(want & have))
                if shared:
                    out.append(Match(d.id, dataset_id, len(shared), shared))
        return sorted(out, key=lambda m: (-m.score, m.demand_id, m.dataset_id))

    def answer(self, demand_id: str, dataset_id: str, offer: dict) -> str:
        """Provider: answer a demand with an offer; returns the (provider-initiated) negotiation id."""
        d = self.db.read(lambda c: self._get(c, demand_id))
        if d.status != "open" or (d.expires and d.expires <= self._now()):
            raise ContractError(LocalText("contract.reason.demand_closed", demand_id))
        return self._contracts.offer_to(d.space_id, d.owner, dataset_id, offer)

    # --- internals -----------------------------------------------------------------------------

    def _now(self) -> str:
        return rfc3339(self.clock.now())

    @staticmethod
    def _operator(conn, space_id: str) -> str:
        row = conn.execute("SELECT operator_did FROM sync_space WHERE space_id = ? AND status = 'member'",
                           (space_id,)).fetchone()
        if row is None:
            raise NotInSpace(space_id)
        return row[0]

    def _get(self, conn, demand_id: str) -> Demand:
        found = [d for d in self._all(conn) if d.id == demand_id]
        if not found:
            raise ContractError(LocalText("contract.reason.demand_unknown", demand_id))
        return found[0]

    def _all(self, conn) -> builtins.list[Demand]:
        return [Demand(i, s, o, json.loads(doc).get("title", ""), st, e, json.loads(doc)) for i, s, o, doc, st, e in
                conn.execute("SELECT id, space_id, owner, demand, status, expires FROM contract_demand")]

    def _save(self, conn, space_id: str, owner: str, body: dict) -> None:
        conn.execute("INSERT OR IGNORE INTO contract_demand (id, space_id, owner, demand, status, expires, updated) "
                     "VALUES (?, ?, ?, ?, 'open', ?, ?)",
                     (body["id"], space_id, owner, json.dumps(body, ensure_ascii=False), body.get("expires"),
                      self._now()))

    def _on_retained(self, conn, msg) -> None:
        """The operator's retained demand: set (open) or cleared (withdrawn by its owner, or expired)."""
        topic_id = msg.topic.rsplit("/", 1)[-1]
        if msg.envelope is None:  # cleared: the demand is closed everywhere
            now = self._now()
            conn.execute("UPDATE contract_demand SET status = CASE WHEN expires IS NOT NULL AND expires <= ? "
                         "THEN 'expired' ELSE 'withdrawn' END, updated = ? WHERE space_id = ? AND id = ? "
                         "AND status = 'open'", (now, now, msg.space_id, f"urn:demand:{topic_id}"))
            return
        body = msg.body if isinstance(msg.body, dict) else {}
        demand, owner = body.get("demand"), body.get("owner")
        if not isinstance(demand, dict) or demand.get("id") != f"urn:demand:{topic_id}" \
                or not isinstance(demand.get("title"), str) or not isinstance(owner, str):
            raise ContractError(LocalText("contract.reason.demand_malformed"))
        self._save(conn, msg.space_id, owner, {k: demand[k] for k in ("id", "expires", *FIELDS) if k in demand})
