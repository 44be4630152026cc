import pytest

from appliance.clock import FixedClock
from appliance.node import Node
from appliance.storage import KdfParams
from tests.mqtt_clients import clients  # noqa: F401 - a fixture: MQTT clients closed after the test

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture
def clock():
    return FixedClock()


@pytest.fixture
def node(tmp_path, clock):
    n = Node.init(tmp_path / "node", PASSPHRASE, name="车间一号", org="示例制造", kdf=KdfParams.fast(), clock=clock)
    yield n
    n.close()


# -- space sync (engineer C): a real mosquitto on a free loopback port ---------------------------

@pytest.fixture
def data(tmp_path, node):
    """A folder ``node`` may register resources from (its only allowed root)."""
    folder = tmp_path / "data"
    folder.mkdir()
    node.resources.allowed_roots = [folder]
    return folder


@pytest.fixture
def mosquitto(tmp_path):
    """An anonymous mosquitto on 127.0.0.1:<free port>, persistence in tmp_path; stopped after."""
    from tests.brokers import Mosquitto

    broker = Mosquitto(tmp_path / "mosquitto")
    yield broker
    broker.stop()


# -- data space governance (engineer D): operator + broker from its own config + member nodes --------

@pytest.fixture
def space(tmp_path):
    """A data space with auto-admission: ``space.operator``, ``space.member(label)``, ``space.broker``."""
    from tests.spaces import SpaceHarness

    harness = SpaceHarness(tmp_path / "space")
    yield harness
    harness.close()


@pytest.fixture
def reviewed_space(tmp_path):
    """The same, with manual review of join requests."""
    from tests.spaces import SpaceHarness

    harness = SpaceHarness(tmp_path / "space", auto_admit=False)
    yield harness
    harness.close()


@pytest.fixture
def pair(tmp_path, mosquitto, clock):
    """Two nodes that have joined the anonymous test broker's space."""
    from tests.integration.sync_helpers import join, make_node

    a = make_node(tmp_path / "a", "节点甲", clock)
    b = make_node(tmp_path / "b", "节点乙", clock)
    join(a, mosquitto)
    join(b, mosquitto)
    yield a, b
    a.close()
    b.close()
