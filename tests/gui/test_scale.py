"""Screen sizes: at 1366x768 and 1920x1080, at 100 % and 150 % scale, the main window fits the screen
and no Chinese text on any page is cut: each page, walked in zh_CN, has every label, button, check
box, tab and sidebar entry at least as wide as its text and inside the window.

Each size runs in its own process: the offscreen platform takes the screen from a configuration
file, and QT_SCALE_FACTOR=1.5 scales the whole layout as a 150 % desktop does (the window then has
2/3 of the screen's pixels to lay itself out in).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIZES = [(1366, 768), (1920, 1080)]
SCALES = ["1", "1.5"]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_page_in_chinese_fits_the_screen_and_cuts_no_text(tmp_path, size, scale):
    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "screen", "x": 0, "y": 0, "width": size[0],
                                               "height": size[1], "logicalDpi": 96, "dpr": 1}]}))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("QT_", "DSNODE_"))},
           "QT_QPA_PLATFORM": f"offscreen:configfile={config}", "QT_SCALE_FACTOR": scale,
           "PYTHONPATH": str(ROOT), "DSNODE_ALLOWED_ROOTS": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "tests.gui.test_scale", str(tmp_path)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    available = found["available"]
    assert found["window"][0] <= available[0] and found["window"][1] <= available[1], found
    assert found["minimum"][0] <= available[0] and found["minimum"][1] <= available[1], found
    assert found["pages"] >= 10
    assert found["cut"] == [], "\n".join(found["cut"])


def test_the_check_finds_a_cut_text(qtbot, zh):
    """What the walk looks for: a label narrower than its text, a button squeezed below its text."""
    from PySide6.QtWidgets import QLabel, QPushButton

    label, wrapped = QLabel("数据资源登记与分类分级"), QLabel("很长的说明文字" * 8)
    pushed = QPushButton("申请上架所选产品")
    wrapped.setWordWrap(True)
    for w in (label, wrapped, pushed):
        qtbot.addWidget(w)
        w.show()
    assert _label_cut(label, "x") == []
    label.setFixedWidth(label.fontMetrics().horizontalAdvance(label.text()) // 2)
    assert _label_cut(label, "x") != []
    wrapped.setFixedSize(120, wrapped.fontMetrics().height())
    assert _label_cut(wrapped, "x") != [], "a wrapped text with no room for its lines"
    pushed.setFixedWidth(pushed.sizeHint().width() // 2)
    assert pushed.width() < pushed.sizeHint().width()


# --- the child: one app at one size -------------------------------------------------------------

def cut_texts(window, page) -> list[str]:
    """Every visible text widget of ``window`` whose text does not fit it or that lies outside the
    window; and ``page`` needing a horizontal scroll bar (a page may scroll down, never sideways)."""
    from PySide6.QtWidgets import QAbstractItemView, QCheckBox, QLabel, QPushButton, QTabBar, QWidget

    out = []
    if page.scroll.horizontalScrollBar().maximum() > 0:
        out.append(f"page_{page.key}: wider than the window by {page.scroll.horizontalScrollBar().maximum()} px")
    inside = window.rect()
    for w in window.findChildren(QWidget):
        if not w.isVisible() or _in_item_view(w, QAbstractItemView):
            continue
        where = f"{_page_of(w)}: {type(w).__name__} {w.objectName()}"
        if isinstance(w, QLabel | QPushButton | QCheckBox | QTabBar) and not page.scroll.isAncestorOf(w):
            box = w.rect().translated(w.mapTo(window, w.rect().topLeft()))
            if not inside.contains(box):
                out.append(f"{where} {_text(w)!r} lies outside the window ({box.getRect()} in {inside.getRect()})")
                continue
        if isinstance(w, QLabel) and w.text():
            out += _label_cut(w, where)
        elif isinstance(w, QPushButton | QCheckBox) and w.text():
            if w.width() < w.sizeHint().width():
                out.append(f"{where} {w.text()!r}: {w.width()} px wide, its text needs {w.sizeHint().width()}")
        elif isinstance(w, QTabBar):
            for i in range(w.count()):
                if w.tabRect(i).width() < w.tabSizeHint(i).width() or w.tabRect(i).right() > w.width():
                    out.append(f"{where} tab {w.tabText(i)!r} is cut")
    return out


def _in_item_view(w, item_view) -> bool:
    """Inside a table or list (their cells are not widgets of their own; headers are judged there)."""
    parent = w.parentWidget()
    while parent is not None:
        if isinstance(parent, item_view):
            return True
        parent = parent.parentWidget()
    return False


def _page_of(w) -> str:
    while w is not None and not w.objectName().startswith("page_"):
        w = w.parentWidget()
    return w.objectName() if w is not None else "window"


def _text(w) -> str:
    return w.text() if hasattr(w, "text") else ""


def _label_cut(label, where: str) -> list[str]:
    from PySide6.QtCore import Qt

    if label.textFormat() == Qt.TextFormat.RichText or "<" in label.text():
        return []
    room = label.contentsRect().width() - 2 * label.margin()
    if label.wordWrap():
        needed = label.heightForWidth(label.width())
        if needed > label.height():
            return [f"{where} {label.text()!r}: {label.height()} px high, its wrapped text needs {needed}"]
        return []
    widest = max(label.fontMetrics().horizontalAdvance(line) for line in label.text().split("\n"))
    if widest > room:
        return [f"{where} {label.text()!r}: {room} px wide, its text needs {widest}"]
    return []


def _populate(node, folder: Path) -> None:
    csv = folder / "采购订单明细表.csv"
    rows = "".join(f"{i},客户{i},1380013{i:04d},{i}.50\n" for i in range(20))
    csv.write_text("订单编号,客户名称,联系电话,金额\n" + rows, encoding="utf-8")
    rid = node.resources.register(csv).resource.id
    node.resources.set_column_rule(rid, {"column": "联系电话", "rule": "mask"})


def walk(folder: Path) -> dict:
    from PySide6.QtWidgets import QApplication

    from appliance import i18n
    from appliance.node import KDF_PROFILES, Node
    from appliance.settings import Settings
    from ui.app import DesktopApp, apply_font

    i18n.set_lang("zh_CN")
    app = QApplication(["dsnode"])
    apply_font(app)
    home = folder / "home"
    node = Node.init(home, b"scale test passphrase", name="测试节点", org="示例制造有限公司",
                     kdf=KDF_PROFILES["minimum"]())
    desktop = DesktopApp(Settings(home=home, kdf_profile="minimum"))
    desktop.run(node)
    try:
        _populate(node, folder)
        window = desktop.window
        cut: list[str] = []
        for i, page in enumerate(window.pages):
            window.sidebar.setCurrentRow(i)
            app.processEvents()
            if page.key == "resources":
                page.list.selectRow(0)
                for tab in range(page.detail.count()):
                    page.detail.setCurrentIndex(tab)
                    app.processEvents()
                    cut += cut_texts(window, page)
            cut += cut_texts(window, page)
            cut += _sidebar_cut(window)
            if os.environ.get("SCALE_SHOTS"):  # to look at them: SCALE_SHOTS=folder
                window.grab().save(str(Path(os.environ["SCALE_SHOTS"]) / f"{page.key}.png"))
        screen = window.screen().availableGeometry()
        frame = window.frameGeometry()
        return {"available": [screen.width(), screen.height()], "window": [frame.width(), frame.height()],
                "minimum": [window.minimumSizeHint().width(), window.minimumSizeHint().height()],
                "pages": len(window.pages), "cut": sorted(set(cut))}
    finally:
        desktop.stop()


def _sidebar_cut(window) -> list[str]:
    bar = window.sidebar
    room = bar.viewport().width()
    out = []
    for i in range(bar.count()):
        item = bar.item(i)
        if bar.visualItemRect(item).width() > room or bar.fontMetrics().horizontalAdvance(item.text()) + 16 > room:
            out.append(f"sidebar {item.text()!r} is cut")
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        result = walk(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(scratch))
    print(json.dumps(result, ensure_ascii=False), flush=True)
    os._exit(0)
