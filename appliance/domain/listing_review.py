"""The space operator's review of one listing request (guideline 8.2.4 c–d), as a table.

A provider's ``dsnode.listing.request`` opens a request ``pending`` (from no state: ``None``); the operator approves or
rejects it (telling the provider); the provider may withdraw it (pending or approved), and a newer
request for the same dataset supersedes a pending one. Rejected and withdrawn are final. A move
that is not allowed (approving a request that is no longer pending) raises UnknownMember, "no
pending listing #n", as the operator commands always said.
"""

from __future__ import annotations

from enum import StrEnum

from appliance.domain.machine import Table
from appliance.errors import LocalText, UnknownMember


class ReviewState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ReviewEvent(StrEnum):
    REQUEST = "request"  # a provider asks (a new request: no state before it)
    APPROVE = "approve"  # the operator approves it
    REJECT = "reject"  # the operator rejects it, with a reason
    WITHDRAW = "withdraw"  # the provider withdrew the dataset
    SUPERSEDE = "supersede"  # the provider asked again for the same dataset


class ReviewAction(StrEnum):
    SEND_APPROVAL = "send_approval"  # sign the entry's approval and send it to the provider
    SEND_REJECTION = "send_rejection"  # tell the provider why


def _refused(state: ReviewState | None, event: ReviewEvent, *, request_id: int | None) -> UnknownMember:
    return UnknownMember(LocalText("operator.reason.pending_listing", request_id))


_P, _A, _R, _W = ReviewState.PENDING, ReviewState.APPROVED, ReviewState.REJECTED, ReviewState.WITHDRAWN
TRANSITIONS: Table[ReviewState | None, ReviewEvent, ReviewAction] = Table({
    (None, ReviewEvent.REQUEST): (_P, ()),
    (_P, ReviewEvent.APPROVE): (_A, (ReviewAction.SEND_APPROVAL,)),
    (_P, ReviewEvent.REJECT): (_R, (ReviewAction.SEND_REJECTION,)),
    (_P, ReviewEvent.WITHDRAW): (_W, ()),
    (_P, ReviewEvent.SUPERSEDE): (_W, ()),
    (_A, ReviewEvent.WITHDRAW): (_W, ()),
}, refuse=_refused)


def step(request_id: int | None, state: ReviewState | None,
         event: ReviewEvent) -> tuple[ReviewState | None, tuple[ReviewAction, ...]]:
    """The request's next state and what to send (``state`` None: no such request); UnknownMember
    naming the request if not allowed."""
    return TRANSITIONS.step(state, event, request_id=request_id)
