"""`dsnode-desktop` (and ``python -m ui``): the desktop app. On a desktop the app is the running node.

It opens the node (first-run wizard or unlock), hosts it with :class:`appliance.host.NodeHost`
(the `dsnode` CLI keeps working against it through the control socket) and shows the main window.
Quitting stops the host, signs a last checkpoint and closes the store.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QApplication

from appliance import i18n
from appliance.errors import ApplianceError
from appliance.host.host import NodeHost
from appliance.i18n import t
from appliance.node import Node
from appliance.settings import load_settings
from ui import prefs as prefs_mod
from ui.dialogs import show_bug, show_error
from ui.tasks import wait_all
from ui.unlock import UnlockDialog
from ui.window import MainWindow
from ui.wizard import FirstRunWizard

log = logging.getLogger(__name__)


class DesktopApp(QObject):
    """Opens the node, hosts it, shows the window; :meth:`stop` undoes all of it (idempotent)."""

    def __init__(self, settings, prefs: prefs_mod.Prefs | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.prefs = prefs or prefs_mod.load(settings.home)
        self.node: Node | None = None
        self.host: NodeHost | None = None
        self.window: MainWindow | None = None
        self.dialog = None

    def start(self) -> None:
        if Node.exists(self.settings.home):
            self.dialog = UnlockDialog(self.settings.home)
            self.dialog.opened.connect(lambda node: self.run(node))
        else:
            self.dialog = FirstRunWizard(self.settings)
            self.dialog.created.connect(lambda node, invitation: self.run(node, invitation))
        self.dialog.rejected.connect(self._gave_up)
        self.dialog.show()

    def _gave_up(self) -> None:
        if self.node is None:
            QApplication.instance().quit()

    def run(self, node: Node, invitation: str | None = None) -> None:
        """Host ``node`` and show the main window."""
        from edge.cli import command_runner
        from edge.cmd_resource import apply_allowed_roots

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

    def stop(self) -> None:
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
    desktop = DesktopApp(settings, prefs)
    app.aboutToQuit.connect(desktop.stop)
    desktop.start()
    code = app.exec()
    desktop.stop()
    return code
