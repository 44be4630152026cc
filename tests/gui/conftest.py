"""GUI tests: pytest-qt, offscreen, each through a real Node in a temporary store."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before PySide6 is imported

import pytest  # noqa: E402

from appliance import i18n  # noqa: E402
from appliance.node import KDF_PROFILES, Node  # noqa: E402
from appliance.settings import Settings  # noqa: E402

PASSPHRASE = "correct horse battery 2026"


@pytest.fixture
def zh():
    i18n.set_lang("zh_CN")
    yield
    i18n.set_lang(None)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", kdf_profile="minimum")


@pytest.fixture
def store(settings):
    """A node store (closed again) with the known passphrase."""
    kdf = KDF_PROFILES["minimum"]()
    Node.init(settings.home, PASSPHRASE.encode(), name="测试节点", org="示例公司", kdf=kdf).close()
    return settings.home


@pytest.fixture
def desktop(qtbot, settings, store, tmp_path, monkeypatch):
    """The app running its node (hosted, control socket served) with the main window shown."""
    monkeypatch.setenv("DSNODE_ALLOWED_ROOTS", str(tmp_path))
    from ui import dialogs
    from ui.app import DesktopApp
    from ui.tasks import wait_all

    app = DesktopApp(settings)
    app.run(Node.open(settings.home, PASSPHRASE.encode()))
    yield app
    dialogs.close_all()
    wait_all()
    app.stop()


@pytest.fixture(autouse=True)
def _all_work_done(qapp):
    yield
    from ui import dialogs
    from ui.tasks import wait_all

    dialogs.close_all()
    assert wait_all(30000), "a worker is still running"
    qapp.processEvents()


@pytest.fixture
def space(tmp_path):
    """A space (the embedded broker, an operator; ``member(label)`` adds admitted nodes) and
    ``space.app_for(node)``: a DesktopApp running that node; the apps are stopped after the test."""
    from tests.spaces import SpaceHarness
    from ui import dialogs
    from ui.app import DesktopApp

    harness = SpaceHarness(tmp_path / "space", embedded=True)
    apps: list[DesktopApp] = []

    def app_for(node) -> DesktopApp:
        app = DesktopApp(Settings(home=node.home, kdf_profile="minimum"))
        app.run(node)
        apps.append(app)
        return app

    harness.app_for = app_for
    yield harness
    dialogs.close_all()
    for app in apps:
        app.stop()
    harness.close()
