"""The unlock dialog comes up without the core: importing what shows it (ui.app, ui.unlock) loads no
service, no store driver and no broker, so the window the user sees first is not held up by them
(they load on a thread meanwhile, ui.app.Preload; bench gui measures the launch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("appliance.node", "appliance.services", "appliance.operator", "appliance.host", "appliance.storage.store",
         "sqlcipher3", "nacl", "asyncio", "paho", "zeroconf", "ui.window")


def test_the_unlock_dialog_needs_none_of_the_core():
    code = ("import json, sys; import ui.app, ui.unlock; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(%r))))" % (HEAVY,))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
                         check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []
