"""A pytest plugin: every `dsnode` the e2e tests start as ``python -m edge …`` (the ``Cli`` helper,
and the daemons and operators some tests start themselves with ``subprocess.Popen``, or ``execve``
on a terminal) runs the frozen program named by DSNODE_FROZEN instead, so the same tests check the
bundle (as Borg runs its archiver tests against borg.exe). Other children (``python -m
appliance.evidence_verify``, mosquitto) are left alone. Used by tests/packaging/test_frozen.py:
``DSNODE_FROZEN=dist/dsnode/dsnode python -m pytest -p tests.packaging.frozen_cli tests/e2e/test_cli.py``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROGRAM = os.environ.get("DSNODE_FROZEN", "")


def frozen_argv(args):
    """``[python, -m, edge, …]`` as ``[frozen dsnode, …]``; anything else unchanged."""
    if isinstance(args, (list, tuple)) and len(args) >= 3 and str(args[0]) == sys.executable \
            and list(args[1:3]) == ["-m", "edge"]:
        return [PROGRAM, *args[3:]]
    return args


@pytest.fixture(autouse=True)
def _frozen_cli(monkeypatch):
    assert PROGRAM, "DSNODE_FROZEN names the frozen dsnode"
    popen_init = subprocess.Popen.__init__
    execve = os.execve

    def init(self, args, *rest, **kwargs):
        popen_init(self, frozen_argv(args), *rest, **kwargs)

    def frozen_execve(path, args, env):
        argv = frozen_argv(args)
        execve(argv[0] if argv is not args else path, argv, env)

    monkeypatch.setattr(subprocess.Popen, "__init__", init)
    monkeypatch.setattr(os, "execve", frozen_execve)
