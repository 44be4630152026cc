"""The operator's review of listing requests in a real space: a newer request supersedes a pending
one, only a pending request can be decided, and a provider's withdrawal ends an approved one."""

from __future__ import annotations

import pytest

from appliance.errors import UnknownMember
from tests.spaces import SPACE, wait_for

pytestmark = pytest.mark.slow

ENTRY = {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据",
         "odrl:hasPolicy": [{"@id": "urn:offer:trial", "@type": "odrl:Offer", "permission": [{"action": "use"}]}]}


def test_a_request_is_superseded_decided_once_and_withdrawn(space):
    operator, provider = space.operator.operator, space.member("provider")

    def states() -> list[tuple[str, str | None]]:
        return [(r.status, r.reason) for r in operator.listings()]

    provider.membership.request_listing(SPACE, "ds-1", ENTRY)
    first = wait_for(lambda: operator.listings("pending"), what="the first request")[0]
    provider.membership.request_listing(SPACE, "ds-1", {**ENTRY, "dct:title": "注塑机温度数据（新）"})
    wait_for(lambda: len(operator.listings()) == 2, what="the second request")
    assert states() == [("withdrawn", "superseded"), ("pending", None)]

    with pytest.raises(UnknownMember) as err:  # superseded: no longer pending
        operator.approve_listing(first.id)
    assert f"listing #{first.id} (pending)" in err.value.message("en") and err.value.exit_code == 105
    with pytest.raises(UnknownMember):
        operator.reject_listing(9999, "no such request")

    second = operator.listings("pending")[0]
    operator.approve_listing(second.id)
    with pytest.raises(UnknownMember):  # decided once
        operator.reject_listing(second.id, "changed my mind")
    assert states() == [("withdrawn", "superseded"), ("approved", None)]

    provider.membership.withdraw_listing(SPACE, "ds-1")
    wait_for(lambda: [r for r in operator.listings() if r.id == second.id and r.status == "withdrawn"],
             what="the approved request to be withdrawn")
    assert states() == [("withdrawn", "superseded"), ("withdrawn", None)]
