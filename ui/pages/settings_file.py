"""Settings kept in the settings file (``dsnode.toml``, :func:`appliance.settings.config_file`): the
network addresses for discovery and the data channel, and where `dsnode` commands and the daemon
get the store key. The core writes the file (:func:`appliance.settings.write_settings`); the
running node reads it when it starts, so each tab says when a saved value is not in effect yet."""

from __future__ import annotations

import socket
import sys
import tomllib
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QButtonGroup, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QPushButton, QRadioButton, QVBoxLayout, QWidget)

from appliance.domain.evidence import Action
from appliance.errors import KeySourceError, LocalText
from appliance.host.flows import passphrase_matches
from appliance.i18n import t
from appliance.net.discovery import check_interfaces
from appliance.settings import config_file, write_settings
from appliance.storage.keysource import DEFAULT_ENV_VAR, KeyFile
from ui.dialogs import info, show_error
from ui.pages.base import button
from ui.tasks import run_task

RESTART_STYLE = "color: #9a6700"


def file_values(path: Path) -> dict:
    """The settings the file holds now ({} when there is none or it does not read)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def local_addresses() -> list[str]:
    """This computer's IPv4 addresses (each interface's on Linux, the host name's elsewhere), loopback
    last. Plain sockets: the desktop bundle leaves QtNetwork out."""
    found = {"127.0.0.1"}
    try:
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    except OSError:
        pass
    if sys.platform.startswith("linux"):
        found.update(_interface_addresses())
    return sorted(found, key=lambda a: (a.startswith("127."), tuple(int(x) for x in a.split("."))))


def _interface_addresses() -> set[str]:
    import fcntl
    import struct

    siocgifaddr = 0x8915  # <linux/sockios.h>: an interface's IPv4 address
    found: set[str] = set()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            try:
                answer = fcntl.ioctl(probe.fileno(), siocgifaddr, struct.pack("256s", name[:15].encode()))
            except OSError:  # no IPv4 address on this interface
                continue
            found.add(socket.inet_ntoa(answer[20:24]))
    finally:
        probe.close()
    return found


class FileTab(QWidget):
    """A tab whose values live in the settings file: save through the core, record it, say when it applies."""

    def __init__(self, page) -> None:
        super().__init__()
        self.page, self.node = page, page.node
        self.path = config_file()
        self.v = QVBoxLayout(self)
        self.restart = QLabel()
        self.restart.setObjectName("restart_note")
        self.restart.setWordWrap(True)
        self.restart.setStyleSheet(RESTART_STYLE)
        self.loaded = False  # read from the file once; a refresh on a core event keeps what is being edited

    def refresh(self) -> None:
        if not self.loaded:
            self.loaded = True
            self.load()

    def load(self) -> None:
        pass

    def finish(self) -> None:
        """The save button, the restart note and where the file is, under the tab's own widgets."""
        row = QHBoxLayout()
        row.addWidget(button("ui.save", self.save, name=f"save_{self.objectName()}"))
        row.addStretch(1)
        self.v.addLayout(row)
        self.v.addWidget(self.restart)
        where = QLabel(t("ui.fset.file", str(self.path)))
        where.setWordWrap(True)
        where.setStyleSheet("color: #555")
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.v.addWidget(where)
        self.v.addStretch(1)

    def write(self, changes: dict) -> bool:
        try:
            write_settings(self.path, changes)
            self.node.evidence.record(Action.SETTINGS_CHANGED, self.node.identity.did,
                                      {"changed": sorted(changes), "file": self.path.name})
        except Exception as e:  # noqa: BLE001 - shown as a dialog (a core error) or an apology (a bug)
            show_error(self, e)
            return False
        self.load()
        info(self, t("ui.fset.saved_restart", str(self.path)))
        return True

    def note_restart(self, pending: bool) -> None:
        self.restart.setText(t("ui.fset.pending") if pending else "")


class NetworkTab(FileTab):
    """``interfaces``: the addresses on which this node finds peers (zeroconf) and serves data."""

    def __init__(self, page) -> None:
        super().__init__(page)
        self.setObjectName("network")
        intro = QLabel(t("ui.fset.net_intro"))
        intro.setWordWrap(True)
        self.v.addWidget(intro)
        self.addresses = QListWidget()
        self.addresses.setObjectName("addresses")
        self.addresses.setMaximumHeight(140)
        self.v.addWidget(self.addresses)
        self.now = QLabel()
        self.now.setObjectName("interfaces_now")
        self.now.setWordWrap(True)
        self.v.addWidget(self.now)
        self.finish()

    def load(self) -> None:
        saved = [a for a in file_values(self.path).get("interfaces", []) if isinstance(a, str)]
        self.addresses.clear()
        for address in [*local_addresses(), *(a for a in saved if a not in local_addresses())]:
            item = QListWidgetItem(address)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if address in saved else Qt.CheckState.Unchecked)
            self.addresses.addItem(item)
        running = tuple(self.page.ctx.settings.interfaces)
        self.now.setText(t("ui.fset.net_now", ", ".join(running)) if running else t("ui.fset.net_off"))
        self.note_restart(tuple(saved) != running)

    def chosen(self) -> list[str]:
        return [self.addresses.item(i).text() for i in range(self.addresses.count())
                if self.addresses.item(i).checkState() == Qt.CheckState.Checked]

    def save(self) -> bool:
        chosen = self.chosen()
        try:
            checked = list(check_interfaces(chosen)) if chosen else None  # the discovery's own check
        except Exception as e:  # noqa: BLE001 - shown as a dialog (a core error) or an apology (a bug)
            show_error(self, e)
            return False
        return self.write({"interfaces": checked})


SOURCES = ("prompt", "key_file", "key_env", "key_credential")


class KeyTab(FileTab):
    """How the store key is obtained: the app always asks for the passphrase; `dsnode` commands and
    the daemon (when the app is not running) ask too, or read it from a key file, an environment
    variable or a systemd credential (``key_file`` / ``key_env`` / ``key_credential``)."""

    def __init__(self, page) -> None:
        super().__init__(page)
        self.setObjectName("key")
        for key in ("ui.key.app", "ui.key.intro"):
            label = QLabel(t(key))
            label.setWordWrap(True)
            self.v.addWidget(label)
        grid = QGridLayout()
        group = QButtonGroup(self)
        self.choice: dict[str, QRadioButton] = {}
        self.value: dict[str, QLineEdit] = {}
        for row, source in enumerate(SOURCES):
            radio = QRadioButton(t(f"ui.key.{source}"))
            radio.setObjectName(f"source_{source}")
            group.addButton(radio)
            self.choice[source] = radio
            grid.addWidget(radio, row, 0)
            if source != "prompt":
                edit = QLineEdit()
                edit.setObjectName(source)
                edit.setPlaceholderText(t(f"ui.key.{source}_hint"))
                radio.toggled.connect(edit.setEnabled)
                self.value[source] = edit
                grid.addWidget(edit, row, 1)
        self.choose_b = QPushButton(t("ui.restore.choose"))
        self.choose_b.clicked.connect(self._choose_key_file)
        self.choice["key_file"].toggled.connect(self.choose_b.setEnabled)
        grid.addWidget(self.choose_b, 1, 2)
        grid.setColumnStretch(1, 1)
        self.v.addLayout(grid)
        self.finish()

    def _choose_key_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, t("ui.key.key_file"), str(Path.home()))
        if path:
            self.value["key_file"].setText(path)

    def load(self) -> None:
        saved = file_values(self.path)
        source = next((s for s in SOURCES[1:] if isinstance(saved.get(s), str) and saved[s]), "prompt")
        self.choice[source].setChecked(True)
        for name, edit in self.value.items():
            edit.setText(str(saved.get(name, "")) if isinstance(saved.get(name), str) else "")
            edit.setEnabled(name == source)
        self.choose_b.setEnabled(source == "key_file")
        if not self.value["key_env"].text():
            self.value["key_env"].setText(DEFAULT_ENV_VAR)
        settings = self.page.ctx.settings
        running = next((s for s in SOURCES[1:] if getattr(settings, s)), "prompt")
        in_effect = str(getattr(settings, running) or "") if running != "prompt" else ""
        self.note_restart((source, str(saved.get(source, "")) if source != "prompt" else "") != (running, in_effect))

    def selected(self) -> str:
        return next(s for s, radio in self.choice.items() if radio.isChecked())

    def save(self) -> bool:
        source = self.selected()
        value = self.value[source].text().strip() if source != "prompt" else ""
        if source != "prompt" and not value:
            show_error(self, KeySourceError(LocalText("ui.key.reason.empty", t(f"ui.key.{source}"))))
            return False
        changes = {s: (value if s == source else None) for s in SOURCES[1:]}
        if source != "key_file":
            return self.write(changes)
        node, path = self.node, Path(value).expanduser()  # the check derives the key: in a worker
        run_task(lambda _p: _opens(node, path), lambda _ok: self.write(changes), lambda e: show_error(self, e))
        return True


def _opens(node, path: Path) -> None:
    """A key file must be private and hold this store's passphrase (checked as the store would)."""
    if not passphrase_matches(node, KeyFile(path).read()):
        raise KeySourceError(LocalText("ui.key.reason.not_this_store", str(path)))
