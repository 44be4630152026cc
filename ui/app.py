"""`dsnode-desktop` (and ``python -m ui``): the desktop app. On a desktop the app is the running node.

It opens the node (first-run wizard or unlock), hosts it with :class:`appliance.host.NodeHost`
(the `dsnode` CLI keeps working against it through the control socket) and shows the main window.
Quitting stops the host, signs a last checkpoint and closes the store.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QApplication

from appliance import i18n
from appliance.errors import ApplianceError
from appliance.i18n import t
from appliance.settings import load_settings
from appliance.storage.layout import StoreLayout
from ui import prefs as prefs_mod
from ui.dialogs import show_bug, show_error
from ui.tasks import wait_all

if TYPE_CHECKING:
    from appliance.host.host import NodeHost
    from appliance.node import Node
    from appliance.services.membership.invitation import Invitation
    from ui.window import MainWindow

log = logging.getLogger(__name__)

# What the main window needs and the unlock dialog does not: the store, the core (every service,
# the operator role), its host, the window and its first page. Imported on a thread while the dialog
# waits for the passphrase and while the key is derived (which releases the GIL), so that the user
# does not wait for it after the key.
STORE = "appliance.storage.store"
PRELOAD = ("appliance.node", "appliance.host.host", "edge.cli", "edge.cmd_resource", "ui.window",
           "ui.pages.dashboard")


class Preload(threading.Thread):
    """Imports :data:`STORE`, then :data:`PRELOAD`; ``span`` is when it ran (perf_counter seconds,
    for the bench). Nothing else imports these meanwhile: two threads importing the same package at
    once can deadlock inside the import system, so the others wait (:meth:`wait_store`, ``join``)."""

    def __init__(self) -> None:
        super().__init__(name="dsnode-preload", daemon=True)
        self.span = (0.0, 0.0)
        self._store = threading.Event()

    def wait_store(self) -> None:
        """Until the store's modules are imported (the unlock derives the key then)."""
        self._store.wait()

    def run(self) -> None:
        start = time.perf_counter()
        try:
            importlib.import_module(STORE)
            self._store.set()
            for name in PRELOAD:
                importlib.import_module(name)
        except Exception:  # noqa: BLE001 - imported again where it is used, and fails there for the user to see
            log.debug("preloading failed", exc_info=True)
        finally:
            self._store.set()
            self.span = (start, time.perf_counter())


class DesktopApp(QObject):
    """Opens the node, hosts it, shows the window; :meth:`stop` undoes all of it (idempotent)."""

    def __init__(self, settings, prefs: prefs_mod.Prefs | None = None, invitation_file: Path | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.invitation_file = invitation_file  # opened with the app (an invitation file's handler)
        self.invitation: Invitation | None = None  # that file's invitation, to offer once the window shows
        self.prefs = prefs or prefs_mod.load(settings.home)
        self.node: Node | None = None
        self.host: NodeHost | None = None
        self.window: MainWindow | None = None
        self.dialog = None
        self.preload: Preload | None = None

    def start(self) -> None:
        problem = self._read_invitation()
        if StoreLayout(Path(self.settings.home)).is_store():  # Store.exists, without the store's modules
            from ui.unlock import UnlockDialog

            self.preload = Preload()
            self.preload.start()
            self.dialog = UnlockDialog(self.settings.home, preload=self.preload)
            self.dialog.opened.connect(lambda node: self.run(node))
        else:
            from ui.wizard import FirstRunWizard

            self.dialog = FirstRunWizard(self.settings)
            self.dialog.created.connect(lambda node, invitation: self.run(node, invitation))
            if self.invitation is not None:  # the wizard's last step, filled in
                self.dialog.space.code.setPlainText(self.invitation.code())
                self.invitation = None
        self.dialog.rejected.connect(self._gave_up)
        self.dialog.show()
        if problem is not None:
            show_error(self.dialog, problem)

    def _read_invitation(self) -> ApplianceError | None:
        """Read the invitation file the app was opened with; the error that says why it is no invitation."""
        if self.invitation_file is None:
            return None
        from appliance.services.membership.invitation import load_invitation

        try:  # absolute: a relative name starting with the code's prefix must not pass for a code
            self.invitation = load_invitation(str(Path(self.invitation_file).absolute()))
        except ApplianceError as e:
            return e
        return None

    def _gave_up(self) -> None:
        if self.node is None:
            QApplication.instance().quit()

    def run(self, node: Node, invitation: str | None = None) -> None:
        """Host ``node`` and show the main window."""
        self._join_preload()
        from appliance.host.host import NodeHost
        from edge.cli import command_runner
        from edge.cmd_resource import apply_allowed_roots
        from ui.join_dialog import ask_join
        from ui.window import MainWindow

        self.node = node
        apply_allowed_roots(node)  # what registering may read: DSNODE_ALLOWED_ROOTS, as for the daemon
        if not (Path(self.settings.home) / prefs_mod.FILE).exists():
            prefs_mod.save(self.settings.home, self.prefs)
        try:
            self.host = NodeHost(node, runner=command_runner(node, self.settings), watch=self.settings.watch,
                                 interfaces=self.settings.interfaces)
            self.host.start()
        except ApplianceError as e:
            self.host = None
            show_error(None, e)
        self.window = MainWindow(node, self.host, self.settings, self.prefs)
        self.window.show()
        if invitation:
            self.window.join(invitation)
        elif self.invitation is not None:  # opened with an invitation file: the join dialog, filled in
            ask_join(self.window).input.code.setPlainText(self.invitation.code())
            self.invitation = None

    def _join_preload(self) -> None:
        if self.preload is not None:
            self.preload.join()

    def stop(self) -> None:
        self._join_preload()
        try:
            if self.window is not None:
                self.window.shutdown()
            wait_all()
        finally:
            try:
                if self.host is not None:
                    self.host.stop()
                    self.host = None
            finally:
                if self.node is not None:
                    self.node.close()
                if self.window is not None:
                    self.window.deleteLater()
                    self.window = None


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dsnode-desktop", description=t("ui.cli.description"))
    parser.add_argument("--home", type=Path, help=t("cli.opt.home"))
    parser.add_argument("--config", type=Path, help=t("cli.opt.config"))
    parser.add_argument("--lang", choices=i18n.LANGS, help=t("cli.opt.lang"))
    parser.add_argument("invitation", nargs="?", type=Path, metavar="FILE", help=t("install.opt.invitation_file"))
    return parser.parse_known_args(argv)[0]


def apply_font(app: QApplication) -> None:
    """A font with Chinese glyphs first (whatever the system has), so no text shows as boxes."""
    font = QFont(app.font())
    font.setFamilies(["Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC",
                      app.font().family()])
    app.setFont(font)


def _excepthook(kind, error, tb) -> None:
    if issubclass(kind, KeyboardInterrupt):
        QApplication.instance().quit()
        return
    if isinstance(error, ApplianceError):
        show_error(None, error)
    else:
        show_bug(None, error.with_traceback(tb))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.config:  # the Settings page changes the file this app read (appliance.settings.config_file)
        os.environ["DSNODE_CONFIG"] = str(args.config.absolute())
    try:
        settings = load_settings({"home": args.home, "lang": args.lang}, config_path=args.config)
    except ApplianceError as e:
        print(f"dsnode-desktop: {e.message()}", file=sys.stderr)
        return e.exit_code
    prefs = prefs_mod.load(settings.home)
    i18n.set_lang(args.lang or prefs.lang or settings.lang or i18n.detect_lang())
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("dsnode")
    apply_font(app)
    sys.excepthook = _excepthook
    desktop = DesktopApp(settings, prefs, invitation_file=args.invitation)
    app.aboutToQuit.connect(desktop.stop)
    desktop.start()
    code = app.exec()
    desktop.stop()
    return code
