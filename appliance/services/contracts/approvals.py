"""How the provider decides a request: auto-approval rules (data, stored in ``contract_rule``), else
the pending queue where a person approves, rejects with a reason or counter-offers.

A rule approves a request only when the requested terms are exactly one of the provider's listed
offers for that dataset (a changed offer always goes to a person). Fields, all optional (an absent
field matches anything)::

    {"dataset": "ds-1", "offer": "urn:offer:trial", "orgs": ["示例制造"], "peers": ["did:key:…"], "min_grade": 3}

``min_grade`` (1–5) approves only consumers whose membership credential, verified against the space
operator's key, carries that grade or a higher one (``terms.member``); ``orgs`` is matched against
the credential's organisation when it verifies.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from appliance.domain.membership import GRADE_MIN, check_grade


@dataclass(frozen=True)
class Rule:
    dataset: str | None = None
    offer: str | None = None  # the offer's @id
    orgs: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    min_grade: int | None = None  # the consumer's verified member grade must be at least this

    def __post_init__(self) -> None:
        if self.min_grade is not None:
            check_grade(self.min_grade)

    @classmethod
    def from_dict(cls, doc: dict) -> Rule:
        unknown = set(doc) - {"dataset", "offer", "orgs", "peers", "min_grade"}
        if unknown:
            raise ValueError(f"unknown rule field(s): {', '.join(sorted(unknown))}")
        return cls(dataset=doc.get("dataset"), offer=doc.get("offer"), orgs=tuple(doc.get("orgs", ())),
                   peers=tuple(doc.get("peers", ())), min_grade=doc.get("min_grade"))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v not in (None, ())}

    def matches(self, *, dataset: str, offer_id: str | None, peer: str, org: str, grade: int = GRADE_MIN) -> bool:
        return ((self.dataset is None or self.dataset == dataset)
                and (self.offer is None or self.offer == offer_id)
                and (not self.orgs or org in self.orgs)
                and (not self.peers or peer in self.peers)
                and (self.min_grade is None or grade >= self.min_grade))


def add(conn, rule: Rule) -> int:
    return conn.execute("INSERT INTO contract_rule (rule) VALUES (?)",
                        (json.dumps(rule.to_dict(), ensure_ascii=False),)).lastrowid


def rules(conn) -> list[Rule]:
    return [rule for _, rule in numbered(conn)]


def numbered(conn) -> list[tuple[int, Rule]]:
    """(rule id, rule), in the order they are tried."""
    return [(rule_id, Rule.from_dict(json.loads(r)))
            for rule_id, r in conn.execute("SELECT id, rule FROM contract_rule ORDER BY id")]


def remove(conn, rule_id: int) -> Rule | None:
    """Remove a rule; the rule removed, None when there is no such rule."""
    row = conn.execute("SELECT rule FROM contract_rule WHERE id = ?", (rule_id,)).fetchone()
    if row is None:
        return None
    conn.execute("DELETE FROM contract_rule WHERE id = ?", (rule_id,))
    return Rule.from_dict(json.loads(row[0]))


def auto_rule(conn, *, dataset: str, offer_id: str | None, peer: str, org: str, listed: bool,
              grade: int = GRADE_MIN) -> Rule | None:
    """The first rule that approves this request, or None (a person decides). ``grade`` and ``org``
    are the consumer's as its verified credential shows them."""
    if not listed:
        return None
    for rule in rules(conn):
        if rule.matches(dataset=dataset, offer_id=offer_id, peer=peer, org=org, grade=grade):
            return rule
    return None
