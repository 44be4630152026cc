"""Contracts: what the negotiation service stores and shows, and the evidence actions it writes.

The protocol itself (states, events, who may send what) is the table in ``negotiation.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """Evidence actions of the contracts feature: one per negotiation state reached, plus refusals."""

    REQUESTED = "contract.requested"
    OFFERED = "contract.offered"
    ACCEPTED = "contract.accepted"
    AGREED = "contract.agreed"
    VERIFIED = "contract.verified"
    FINALIZED = "contract.finalized"
    TERMINATED = "contract.terminated"
    REJECTED = "contract.message_rejected"  # a message refused, state unchanged
    RULE_ADDED = "contract.rule_added"
    RULE_REMOVED = "contract.rule_removed"
    AGREEMENT_RETIRED = "contract.agreement_retired"
    DEMAND_PUBLISHED = "demand.published"
    DEMAND_WITHDRAWN = "demand.withdrawn"


@dataclass(frozen=True)
class Negotiation:
    id: str  # this node's process id
    peer_pid: str | None
    role: str  # consumer | provider
    space_id: str
    peer: str
    dataset_id: str
    offer: dict
    state: str
    pending: bool
    reason: str
    deadline: str | None
    created: str
    updated: str

    @property
    def consumer_pid(self) -> str | None:
        return self.id if self.role == "consumer" else self.peer_pid

    @property
    def provider_pid(self) -> str | None:
        return self.id if self.role == "provider" else self.peer_pid

    def pids(self) -> tuple[str, str]:
        """(consumer pid, provider pid), once the peer's is known (its first message names it)."""
        assert self.peer_pid is not None, "the peer has not named its process yet"
        return (self.id, self.peer_pid) if self.role == "consumer" else (self.peer_pid, self.id)


@dataclass(frozen=True)
class Step:
    n: int
    ts: str
    event: str
    who: str
    direction: str  # sent | received | local
    state_before: str
    state_after: str
    reason: str
    message: dict | None


@dataclass(frozen=True)
class NegotiationChanged:
    """Bus event: a negotiation moved (or a message for it was refused)."""

    negotiation_id: str
    state: str
    pending: bool
