"""Settings: the app's language and idle lock; the node's identity and home, to read."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QSpinBox

from appliance.i18n import get_lang, t
from ui.pages.base import Page, button


class SettingsPage(Page):
    key = "settings"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        form = QFormLayout()
        self.lang = QComboBox()
        self.lang.setObjectName("lang")
        self.lang.addItem("简体中文", "zh_CN")
        self.lang.addItem("English", "en")
        self.lang.setCurrentIndex(max(0, self.lang.findData(get_lang())))
        form.addRow(t("ui.set.lang"), self.lang)
        self.idle = QSpinBox()
        self.idle.setObjectName("idle")
        self.idle.setRange(0, 240)
        self.idle.setSuffix(t("ui.set.minutes"))
        self.idle.setSpecialValueText(t("ui.set.never"))
        self.idle.setValue(ctx.prefs.idle_minutes)
        form.addRow(t("ui.set.idle"), self.idle)
        form.addRow(button("ui.save", self.save, name="save_settings"))
        self.home = QLabel(str(ctx.node.home))
        self.did = QLabel(ctx.node.identity.did)
        self.socket = QLabel()
        for label in (self.home, self.did, self.socket):
            label.setWordWrap(True)
        form.addRow(t("ui.set.home"), self.home)
        form.addRow(t("ui.set.did"), self.did)
        form.addRow(t("ui.set.cli"), self.socket)
        self.layout_.addLayout(form)
        self.layout_.addStretch(1)

    def refresh(self) -> None:
        self.socket.setText(t("ui.set.cli_hint", str(self.ctx.host.control.socket_file)))

    def save(self) -> None:
        self.ctx.window.apply_prefs(self.ctx.prefs.with_(lang=self.lang.currentData(), idle_minutes=self.idle.value()))
