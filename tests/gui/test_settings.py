"""The settings page: the spaces this node is in (leave one), the auto-approval rules, the network
addresses and the key source (written to the settings file by the core's writer, with a word that
they apply from the next start), through a real node; in both languages."""

from __future__ import annotations

import os
import stat
import tomllib

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from appliance.settings import Settings
from tests.gui.conftest import PASSPHRASE
from tests.gui.test_language import english_left
from tests.spaces import SPACE, SpaceHarness
from ui import dialogs
from ui.app import DesktopApp


@pytest.fixture(autouse=True)
def config(tmp_path, monkeypatch):
    """The settings file the app writes (never the user's own)."""
    path = tmp_path / "config" / "dsnode.toml"
    monkeypatch.setenv("DSNODE_CONFIG", str(path))
    return path


def _tab(page, tab):
    page.tabs.setCurrentWidget(tab)
    page.safe_refresh()
    return tab


def _file(path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _shown(kind: str) -> list[str]:
    return [d.text() for d in dialogs.shown if d.objectName() == kind]


def test_the_network_addresses_are_saved_and_apply_after_a_restart(qtbot, desktop, config, english):
    page = desktop.window.show_page("settings")
    net = _tab(page, page.network)
    assert "none" in net.now.text(), "no addresses in use: the node does not look for peers on the LAN"
    items = {net.addresses.item(i).text(): net.addresses.item(i) for i in range(net.addresses.count())}
    assert "127.0.0.1" in items, "this computer's addresses are offered"
    items["127.0.0.1"].setCheckState(Qt.CheckState.Checked)
    assert net.save()
    assert _file(config)["interfaces"] == ["127.0.0.1"]
    assert net.restart.text() == "Saved, not yet in effect: the node uses this from its next start."
    assert any("from its next start" in text for text in _shown("info_dialog"))
    assert "settings.changed" in [e.action for e in desktop.node.evidence.entries()]


def test_an_address_this_computer_does_not_have_is_refused(qtbot, desktop, config, english):
    page = desktop.window.show_page("settings")
    net = _tab(page, page.network)
    config.parent.mkdir(parents=True)
    config.write_text('interfaces = ["198.51.100.77"]\n', encoding="utf-8")  # TEST-NET-2: nobody's address
    net.load()
    assert net.chosen() == ["198.51.100.77"], "the file's value is shown even when it is not this computer's"
    assert not net.save()
    assert "198.51.100.77" in _shown("error_dialog")[0]
    assert _file(config)["interfaces"] == ["198.51.100.77"], "the file stays as it was"


def test_the_key_source_takes_a_private_key_file_of_this_store_only(qtbot, desktop, config, tmp_path, english):
    page = desktop.window.show_page("settings")
    keys = _tab(page, page.keys)
    assert keys.choice["prompt"].isChecked(), "no key source set: the commands prompt"
    key = tmp_path / "store.key"
    key.write_text("not the passphrase\n", encoding="utf-8")
    os.chmod(key, stat.S_IRUSR | stat.S_IWUSR)
    keys.choice["key_file"].setChecked(True)
    keys.value["key_file"].setText(str(key))
    keys.save()
    qtbot.waitUntil(lambda: bool(_shown("error_dialog")), timeout=20000)
    assert "does not hold this store's passphrase" in _shown("error_dialog")[0]
    assert not config.exists()
    dialogs.close_all()
    key.write_text(PASSPHRASE + "\n", encoding="utf-8")
    keys.save()
    qtbot.waitUntil(lambda: config.exists(), timeout=20000)
    assert _file(config) == {"key_file": str(key)}
    keys.choice["key_env"].setChecked(True)
    keys.value["key_env"].setText("BOX_PASSPHRASE")
    keys.save()
    assert _file(config) == {"key_env": "BOX_PASSPHRASE"}, "one source at a time"
    assert keys.restart.text(), "the commands use it from the next start; the note says so"


def test_an_auto_approval_rule_is_added_and_listed(qtbot, desktop, english):
    page = desktop.window.show_page("settings")
    rules = _tab(page, page.rules)
    assert rules.empty.isVisible() and not rules.list.isVisible()
    dialog = rules.ask_rule()
    dialog.orgs.setText("示例制造, 示例汽配")
    dialog.grade.setValue(3)
    dialog.accept()
    assert [r.to_dict() for r in desktop.node.contracts.rules()] == [{"orgs": ["示例制造", "示例汽配"], "min_grade": 3}]
    rules.refresh()
    assert rules.list.rowCount() == 1
    assert [rules.list.item(0, c).text() for c in (1, 3, 5)] == ["any", "示例制造、示例汽配", "3 or higher"]
    assert not rules.remove_b.isEnabled(), "nothing chosen to remove"
    rules.list.selectRow(0)
    rules.remove()
    box = next(d for d in dialogs.shown if d.objectName() == "remove_rule_confirm")
    box.button(QMessageBox.StandardButton.Yes).click()
    assert desktop.node.contracts.rules() == []
    assert rules.empty.isVisible(), "the list says every request waits for a decision again"
    assert "contract.rule_removed" in [e.action for e in desktop.node.evidence.entries()]


@pytest.fixture
def member_app(tmp_path):
    space = SpaceHarness(tmp_path / "space", embedded=True)
    node = space.member("member")
    app = DesktopApp(Settings(home=node.home, kdf_profile="minimum"))
    app.run(node)
    yield space, node, app
    dialogs.close_all()
    app.stop()
    space.close()


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_the_spaces_tab_shows_the_space_and_leaves_it(qtbot, member_app, lang):
    from appliance import i18n

    i18n.set_lang(lang)
    space, node, app = member_app
    try:
        page = app.window.show_page("settings")
        tab = _tab(page, page.spaces)
        assert tab.list.rowCount() == 1
        row = [tab.list.item(0, c).text() for c in range(tab.list.columnCount())]
        assert row[0] == "测试空间" and row[1] == SPACE and row[4] == f"127.0.0.1:{space.port}"
        assert row[2] == {"en": "member", "zh_CN": "成员"}[lang]
        if lang == "zh_CN":
            assert not english_left(page), english_left(page)
        tab.list.selectRow(0)
        assert tab.leave_b.isEnabled() and not tab.ca_b.isEnabled(), "no TLS here: no CA certificate to save"
        tab.leave()
        box = next(d for d in dialogs.shown if d.objectName() == "leave_confirm")
        assert "测试空间" in box.text()
        box.button(QMessageBox.StandardButton.Yes).click()
        qtbot.waitUntil(lambda: space.status(node) == "left", timeout=10000)
        tab.refresh()
        assert tab.list.item(0, 2).text() == {"en": "left", "zh_CN": "已退出"}[lang]
    finally:
        i18n.set_lang(None)
