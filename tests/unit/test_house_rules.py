"""The house rules CI checks rather than remembers: ruff over every Python file (the rules are in
pyproject.toml's [tool.ruff]; `.venv/bin/ruff check .` shows the same, `--fix` mends some)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           "appliance", "edge", "bench", "tests", "packaging"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
