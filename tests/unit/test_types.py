"""The core type-checks: mypy over appliance/ (the settings are pyproject.toml's [tool.mypy];
`.venv/bin/mypy` shows the same). A fresh cache each run, so what passes here passes in CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_finds_nothing_in_the_core(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy"), "--no-color-output",
                           "--no-error-summary"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
