"""How the provider decides a request: auto-approval rules (data, stored in ``contract_rule``), else
the pending queue where a person approves, rejects with a reason or counter-offers.

A rule approves a request only when the requested terms are exactly one of the provider's listed
offers for that dataset (a changed offer always goes to a person). Fields, all optional (an absent
field matches anything)::

    {"dataset": "ds-1", "offer": "urn:offer:trial", "orgs": ["示例制造"], "peers": ["did:key:…"]}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Rule:
    dataset: str | None = None
    offer: str | None = None  # the offer's @id
    orgs: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, doc: dict) -> Rule:
        unknown = set(doc) - {"dataset", "offer", "orgs", "peers"}
        if unknown:
            raise ValueError(f"unknown rule field(s): {', '.join(sorted(unknown))}")
        return cls(dataset=doc.get("dataset"), offer=doc.get("offer"), orgs=tuple(doc.get("orgs", ())),
                   peers=tuple(doc.get("peers", ())))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v not in (None, ())}

    def matches(self, *, dataset: str, offer_id: str | None, peer: str, org: str) -> bool:
        return ((self.dataset is None or self.dataset == dataset)
                and (self.offer is None or self.offer == offer_id)
                and (not self.orgs or org in self.orgs)
                and (not self.peers or peer in self.peers))


def add(conn, rule: Rule) -> int:
    return conn.execute("INSERT INTO contract_rule (rule) VALUES (?)",
                        (json.dumps(rule.to_dict(), ensure_ascii=False),)).lastrowid


def rules(conn) -> list[Rule]:
    return [Rule.from_dict(json.loads(r)) for (r,) in conn.execute("SELECT rule FROM contract_rule ORDER BY id")]


def auto_rule(conn, *, dataset: str, offer_id: str | None, peer: str, org: str, listed: bool) -> Rule | None:
    """The first rule that approves this request, or None (a person decides)."""
    if not listed:
        return None
    for rule in rules(conn):
        if rule.matches(dataset=dataset, offer_id=offer_id, peer=peer, org=org):
            return rule
    return None
