"""The core never loads Qt or the adapters: checked in a fresh interpreter."""

import subprocess
import sys
import textwrap


def test_importing_every_core_module_loads_no_qt_ui_or_edge():
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import appliance
        for mod in pkgutil.walk_packages(appliance.__path__, "appliance."):
            importlib.import_module(mod.name)
        bad = sorted(m for m in sys.modules
                     if m.split(".")[0] in ("PySide6", "shiboken6", "ui", "edge"))
        print(",".join(bad))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"appliance imported: {out.stdout.strip()}"
