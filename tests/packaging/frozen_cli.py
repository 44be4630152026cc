"""A pytest plugin: the e2e CLI tests' `Cli` runs the frozen program named by DSNODE_FROZEN
instead of `python -m edge`, so the same tests check the bundle (as Borg runs its archiver tests
against borg.exe). Used by tests/packaging/test_frozen.py:
``DSNODE_FROZEN=dist/dsnode/dsnode python -m pytest -p tests.packaging.frozen_cli tests/e2e/test_cli.py``."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.e2e import conftest as e2e


@pytest.fixture(autouse=True)
def _frozen_cli(monkeypatch):
    program = os.environ["DSNODE_FROZEN"]

    def run(self, *args: str, ok: bool = True, env: dict | None = None, input: str | None = None):
        proc = subprocess.run([program, *args], capture_output=True, text=True, cwd=e2e.ROOT,
                              env=env or self.env(), input=input, timeout=120)
        if ok:
            assert proc.returncode == 0, f"{program} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
        return proc

    monkeypatch.setattr(e2e.Cli, "run", run)
