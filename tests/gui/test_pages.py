"""The main window through a real hosted node: registering, the GUI staying live, errors, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QTimer

from appliance.errors import WrongPassphrase
from ui import dialogs

ROOT = Path(__file__).resolve().parents[2]


def _csv(path: Path, rows: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("order_id,customer,phone,amount\n")
        for i in range(rows):
            f.write(f"{i},客户{i % 97},138{i % 100000000:08d},{i % 1000}.50\n")
    return path


def test_registering_a_file_on_the_resources_page_shows_it_in_the_list(qtbot, desktop, tmp_path, english):
    page = desktop.window.show_page("resources")
    assert page.empty.isVisible()
    page.register([_csv(tmp_path / "orders.csv", 50)])
    qtbot.waitUntil(lambda: page.model.rowCount() == 1 and not page.busy, timeout=30000)
    assert page.model.text(0, 0) == "orders.csv"
    page.list.selectRow(0)
    assert "50" in [page.about.itemAt(i, page.about.ItemRole.FieldRole).widget().text()
                    for i in range(page.about.rowCount())], "the detail says how many rows"
    page.list.selectRow(0)
    assert page.detail.isVisible()
    assert page.schema.rowCount() == 4
    page.rule_column.setCurrentText("phone")
    page.rule_kind.setCurrentIndex(page.rule_kind.findData("mask"))
    page.set_rule()
    assert page.rules.rowCount() == 1
    before = page.before.item(0, 2).text()
    after = page.after.item(0, 2).text()
    assert before != after, "the preview shows the masked phone number"


def test_the_gui_thread_keeps_processing_events_while_a_large_file_registers(qtbot, desktop, tmp_path):
    big = _csv(tmp_path / "big.csv", 400_000)
    page = desktop.window.show_page("resources")
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(page.busy))
    timer.start(10)
    try:
        page.register([big])
        assert page.busy
        desktop.window.sidebar.setCurrentRow(0)  # a click while it runs is handled at once
        assert desktop.window.pages_stack.currentIndex() == 0
        qtbot.waitUntil(lambda: not page.busy, timeout=120000)
    finally:
        timer.stop()
    assert sum(ticks) >= 5, "the timer kept firing while the registration ran"
    assert desktop.node.resources.list()[0].title == "big.csv"


def test_a_core_error_shows_its_own_message(qtbot, desktop, english):
    box = dialogs.show_error(desktop.window, WrongPassphrase())
    assert box.objectName() == "error_dialog"
    assert box.text() == WrongPassphrase().message("en")


def test_a_bug_shows_an_apology_with_a_report_and_is_logged(qtbot, desktop, observed_errors, english):
    try:
        raise RuntimeError("boom")
    except RuntimeError as e:
        dialog = dialogs.show_bug(desktop.window, e)
    report = dialog.findChild(type(dialogs.QPlainTextEdit()), "bug_report").toPlainText()
    assert "RuntimeError: boom" in report
    assert "Traceback" in report  # in the copyable report, not in the dialog's words
    assert observed_errors and observed_errors[0].exc_info is not None


def test_verifying_evidence_shows_the_result(qtbot, desktop, english):
    page = desktop.window.show_page("evidence")
    assert page.model.rowCount() >= 1
    page.verify()
    qtbot.waitUntil(lambda: "intact" in page.result.text(), timeout=30000)
    page.export_to(Path(desktop.node.home).parent / "bundle.zip")
    qtbot.waitUntil(lambda: any(d.objectName() == "info_dialog" for d in dialogs.shown), timeout=30000)
    assert (Path(desktop.node.home).parent / "bundle.zip").exists()


def test_the_idle_lock_hides_the_window_until_the_passphrase(qtbot, desktop, english):
    from tests.gui.conftest import PASSPHRASE

    window = desktop.window
    window.lock()
    assert window.stack.currentIndex() == 1
    window.lock_passphrase.setText("wrong one")
    window.unlock()
    qtbot.waitUntil(lambda: window.lock_problem.text() == WrongPassphrase().message("en"), timeout=20000)
    window.lock_passphrase.setText(PASSPHRASE)
    window.unlock()
    qtbot.waitUntil(lambda: window.stack.currentIndex() == 0, timeout=20000)


def test_the_cli_works_against_the_running_app(qtbot, desktop, tmp_path):
    desktop.node.resources.register(_csv(tmp_path / "shipments.csv", 10))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSNODE_")}
    env.update({"DSNODE_HOME": str(desktop.node.home), "DSNODE_LANG": "en",
                "DSNODE_CONFIG": str(tmp_path / "none.toml")})
    result = []

    def run():
        result.append(subprocess.run([sys.executable, "-m", "edge", "resource", "list"], capture_output=True,
                                     text=True, cwd=ROOT, env=env, timeout=60))

    import threading

    t = threading.Thread(target=run)
    t.start()
    qtbot.waitUntil(lambda: not t.is_alive(), timeout=60000)  # the GUI thread keeps serving meanwhile
    t.join()
    proc = result[0]
    assert proc.returncode == 0, proc.stderr
    assert "shipments" in proc.stdout, "no key was given: the running app answered"


def test_a_backup_from_the_settings_page_runs_while_the_node_runs(qtbot, desktop, tmp_path, english):
    page = desktop.window.show_page("settings")
    page.backup_to(tmp_path / "box.bak")
    qtbot.waitUntil(lambda: page.backup_b.isEnabled(), timeout=30000)
    assert (tmp_path / "box.bak").stat().st_size > 0
    assert "Backup written to" in page.backup_state.text()
    assert "store.backup_created" in [e.action for e in desktop.node.evidence.entries()]
