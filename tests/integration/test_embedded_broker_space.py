"""A whole data space on the embedded broker (no mosquitto): the operator and two real nodes join,
a listing is reviewed and reaches the other member, and a revoked member is cut off."""

from __future__ import annotations

import pytest

from tests.spaces import SPACE, SpaceHarness, wait_for


ENTRY = {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据", "dcat:keyword": ["注塑", "温度"],
         "odrl:hasPolicy": [{"@type": "odrl:Offer", "permission": [{"action": "use"}]}]}


@pytest.fixture
def space(tmp_path):
    harness = SpaceHarness(tmp_path / "space", embedded=True)
    yield harness
    harness.close()


def test_two_nodes_join_and_sync_a_listing_then_a_revoked_one_is_cut_off(space):
    a, b = space.member("a"), space.member("b")
    assert {m.status for m in space.operator.operator.members()} == {"member"}
    a.membership.request_listing(SPACE, "ds-1", ENTRY, pricing={"price": "100", "unit": "CNY/月"},
                                 compliance="数据来源合法，已脱敏")
    request = wait_for(lambda: space.operator.operator.listings("pending"), what="the listing request")[0]
    space.operator.operator.approve_listing(request.id)
    (entry,) = wait_for(lambda: b.sync.catalog(SPACE, "注塑"), what="the entry to reach b")
    assert entry.dataset_id == "ds-1" and entry.provider == a.identity.did

    space.operator.operator.revoke(a.identity.did, "违反数据使用协议")
    space.wait_status(a, "revoked")
    wait_for(lambda: not b.sync.catalog(SPACE), what="a's listing to disappear at b")
    wait_for(lambda: not a.sync.status(SPACE)[0].connected, what="a to be disconnected")


def test_messages_for_an_offline_member_wait_on_the_embedded_broker(space):
    a, b = space.member("a"), space.member("b")
    b.stop()
    a.membership.request_listing(SPACE, "ds-later", ENTRY)
    request = wait_for(lambda: space.operator.operator.listings("pending"), what="the listing request")[0]
    space.operator.operator.approve_listing(request.id)
    b.start()
    wait_for(lambda: [e for e in b.sync.catalog(SPACE) if e.dataset_id == "ds-later"], what="the entry at b")


def test_a_port_already_taken_is_said_in_the_operators_language(space):
    from appliance.errors import BrokerConfigError
    from appliance.operator.broker_config import ListenerConfig
    from edge.broker_process import start_embedded_broker

    with pytest.raises(BrokerConfigError) as err:
        start_embedded_broker(space.operator, ListenerConfig(host="127.0.0.1", port=space.port))
    assert f"the embedded broker cannot listen on 127.0.0.1:{space.port}" in err.value.message("en")
    assert err.value.message("zh_CN").startswith(
        f"无法生成消息代理（broker）配置：内置消息代理无法在 127.0.0.1:{space.port} 上监听（")
