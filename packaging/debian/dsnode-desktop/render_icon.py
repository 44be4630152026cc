"""Write the app's icon (ui.notify.app_icon, drawn in code) as PNG files for the desktop menu:
``python render_icon.py <folder>`` writes <folder>/<size>x<size>/apps/dsnode.png (hicolor layout)."""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSize  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from ui.notify import app_icon  # noqa: E402

SIZES = (16, 24, 32, 48, 64, 128, 256)


def main(folder: Path) -> None:
    app = QApplication.instance() or QApplication([sys.argv[0]])
    icon = app_icon()
    for size in SIZES:
        path = folder / f"{size}x{size}" / "apps" / "dsnode.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not icon.pixmap(QSize(size, size)).save(str(path), "PNG"):
            raise SystemExit(f"could not write {path}")
    del app


if __name__ == "__main__":
    main(Path(sys.argv[1]))
