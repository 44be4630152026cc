"""Settings, one tab each: the app (language, idle lock, tray, backup; the node's identity and home
to read), the spaces this node is in, the auto-approval rules, the network addresses and where
the store key comes from. What the node keeps goes through the Node API; what the settings file
holds goes through the core's writer (:mod:`ui.pages.settings_file`)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QProgressBar,
                               QSizePolicy, QSpinBox, QTabWidget, QWidget)

from appliance.i18n import get_lang, t
from ui.dialogs import info, show_error
from ui.pages.base import Page, button
from ui.pages.settings_file import KeyTab, NetworkTab
from ui.pages.settings_node import RulesTab, SpacesTab
from ui.tasks import run_task


class SettingsPage(Page):
    key = "settings"
    watches = (object,)  # a space joined or left, a rule added: the tabs read the node again

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("settings_tabs")
        self.tabs.addTab(self._general(), t("ui.sset.tab.general"))
        self.spaces = SpacesTab(self)
        self.rules = RulesTab(self)
        self.network = NetworkTab(self)
        self.keys = KeyTab(self)
        for tab, key in ((self.spaces, "spaces"), (self.rules, "rules"), (self.network, "network"),
                         (self.keys, "key")):
            self.tabs.addTab(tab, t(f"ui.sset.tab.{key}"))
        self.tabs.currentChanged.connect(lambda *_: self.safe_refresh())
        self.layout_.addWidget(self.tabs, 1)

    def _general(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.lang = QComboBox()
        self.lang.setObjectName("lang")
        self.lang.addItem("简体中文", "zh_CN")
        self.lang.addItem("English", "en")
        self.lang.setCurrentIndex(max(0, self.lang.findData(get_lang())))
        self.lang.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        form.addRow(t("ui.set.lang"), self.lang)
        self.idle = QSpinBox()
        self.idle.setObjectName("idle")
        self.idle.setRange(0, 240)
        self.idle.setSuffix(t("ui.set.minutes"))
        self.idle.setSpecialValueText(t("ui.set.never"))
        self.idle.setValue(self.ctx.prefs.idle_minutes)
        self.idle.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        form.addRow(t("ui.set.idle"), self.idle)
        self.tray = QCheckBox(t("ui.set.tray"))
        self.tray.setObjectName("tray")
        self.tray.setChecked(self.ctx.prefs.keep_in_tray)
        form.addRow("", self.tray)
        save = QHBoxLayout()
        save.addWidget(button("ui.save", self.save, name="save_settings"))
        save.addWidget(QLabel(t("ui.sset.at_once")))
        save.addStretch(1)
        form.addRow("", save)
        self.home = QLabel(str(self.ctx.node.home))
        self.did = QLabel(self.ctx.node.identity.did)
        self.socket = QLabel()
        for label in (self.home, self.did, self.socket):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)  # a long store folder or socket path must not widen the page
        form.addRow(t("ui.set.home"), self.home)
        form.addRow(t("ui.set.did"), self.did)
        form.addRow(t("ui.set.cli"), self.socket)
        backup = QHBoxLayout()
        self.backup_b = button("ui.set.backup", self.choose_backup)
        backup.addWidget(self.backup_b)
        self.backup_state = QLabel(t("ui.set.backup_hint"))
        self.backup_state.setObjectName("backup_state")
        self.backup_state.setWordWrap(True)
        backup.addWidget(self.backup_state, 1)
        self.backup_busy = QProgressBar()
        self.backup_busy.setRange(0, 0)
        self.backup_busy.setVisible(False)
        backup.addWidget(self.backup_busy)
        form.addRow(t("ui.set.backup_row"), backup)
        return w

    def refresh(self) -> None:
        host = self.ctx.host
        self.socket.setText(t("ui.set.cli_hint", str(host.control.socket_file)) if host is not None else "-")
        tab = self.tabs.currentWidget()
        if hasattr(tab, "refresh"):
            tab.refresh()

    def choose_backup(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, t("ui.set.backup"), str(Path.home() / "dsnode.bak"))
        if path:
            self.backup_to(Path(path))

    def backup_to(self, path: Path) -> None:
        """A consistent backup (in a worker) while the node keeps running."""
        node = self.node
        self.backup_b.setEnabled(False)
        self.backup_busy.setVisible(True)
        run_task(lambda _p: node.backup(path), self._backed_up, self._backup_failed)

    def _backed_up(self, backup) -> None:
        self.backup_b.setEnabled(True)
        self.backup_busy.setVisible(False)
        self.backup_state.setText(t("ui.set.backup_done", str(backup.path), backup.size))
        info(self, t("ui.set.backup_done", str(backup.path), backup.size))

    def _backup_failed(self, error) -> None:
        self.backup_b.setEnabled(True)
        self.backup_busy.setVisible(False)
        show_error(self, error)

    def save(self) -> None:
        """The app's own preferences: they apply at once (no restart)."""
        self.ctx.window.apply_prefs(self.ctx.prefs.with_(lang=self.lang.currentData(), idle_minutes=self.idle.value(),
                                                         keep_in_tray=self.tray.isChecked()))
