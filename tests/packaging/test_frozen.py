"""The frozen headless `dsnode` (PyInstaller, one-dir and one-file) does what the checkout does:
its version, the selftest, a new store and its status, and the daemon up and down again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.host import ControlClient
from tests.packaging.conftest import ROOT

pytestmark = pytest.mark.slow


def env_for(home: Path, key_file: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSNODE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({"DSNODE_HOME": str(home), "DSNODE_KEY_FILE": str(key_file), "DSNODE_LANG": "en",
                "DSNODE_CONFIG": str(home.parent / "none.toml")}, **extra)
    return env


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "store.key"
    path.write_text("frozen box passphrase\n")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("kind", ["one-dir", "one-file"])
def test_the_frozen_program_says_its_version_and_passes_its_selftest(bundle, kind, tmp_path, key_file):
    program = bundle / "dsnode" / "dsnode" if kind == "one-dir" else bundle / "dsnode-edge"
    env = env_for(tmp_path / "home", key_file)
    version = subprocess.run([program, "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("dsnode "), version.stderr
    check = subprocess.run([program, "selftest"], capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Qt not checked" in check.stdout  # the headless bundle holds no Qt


def test_the_frozen_program_creates_a_store_and_runs_the_node(bundle, tmp_path, key_file):
    program = str(bundle / "dsnode" / "dsnode")
    home = tmp_path / "home"
    env = env_for(home, key_file)

    def dsnode(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([program, *args], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, f"dsnode {' '.join(args)}: {proc.stderr}"
        return proc

    assert "Created node did:key:" in dsnode("init", "--name", "frozen-box", "--kdf", "minimum").stdout
    assert "frozen-box" in dsnode("status").stdout

    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(30)
    try:
        daemon = subprocess.Popen([program, "run"], env={**env, "NOTIFY_SOCKET": str(notify)},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert sock.recv(4096).decode().startswith("READY=1")
            assert ControlClient(home).running()
            assert "frozen-box" in dsnode("status").stdout  # answered by the running node
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, err
    finally:
        sock.close()


# the e2e CLI modules run again against the bundle: every `python -m edge` they start, the daemons and
# operators too, is the frozen program; in two pytest runs at once, about equal in length (seconds
# on the 2-core CI machine kind, busy), as they mostly wait on brokers and daemons. Left out to keep
# CI short (each passes frozen): test_cli_bad_files (47), test_cli_resource (28), test_products_cli
# (24), test_demo_embedded (21): damaged files, resource scans and the demo, not what freezing changes.
FROZEN_E2E = (("cli", "contract_cli", "transfer_cli", "operator_cli"),  # 95 + 29 + 21 + 6
              ("running_node", "space_cli", "backup_cli", "selftest", "config_cli"))  # 87 + 18 + 18 + 7 + 6


@pytest.mark.timeout(900)
def test_the_e2e_cli_tests_pass_against_the_frozen_program(bundle):
    """The same tests as in-process, each `dsnode …` run by the bundle (tests/packaging/frozen_cli.py)."""
    env = {**os.environ, "DSNODE_FROZEN": str(bundle / "dsnode" / "dsnode")}
    runs = [subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "-p", "tests.packaging.frozen_cli", *(f"tests/e2e/test_{m}.py" for m in modules)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)
            for modules in FROZEN_E2E]
    try:
        outputs = [run.communicate(timeout=880)[0] for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    failed = [out[-5000:] for run, out in zip(runs, outputs, strict=True) if run.returncode != 0]
    assert not failed, "\n\n".join(failed)


def test_the_frozen_desktop_build_passes_its_selftest_with_qt_and_starts_its_app(desktop_bundle, tmp_path, key_file):
    env = env_for(tmp_path / "home", key_file, QT_QPA_PLATFORM="offscreen")
    check = subprocess.run([desktop_bundle / "dsnode", "selftest"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert any(line.startswith("desktop (Qt offscreen, QR pictures)") and line.endswith(" ok")
               for line in check.stdout.splitlines())
    damaged = tmp_path / "damaged.dsinvite"  # opened as the menu entry's %f hands it over
    damaged.write_text("DSI1-not-a-code\n")
    app = subprocess.Popen([desktop_bundle / "dsnode-desktop", "--home", str(tmp_path / "home"), str(damaged)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):  # the app stays up (its wizard, and why the file is refused)
            app.wait(timeout=5)
    finally:
        app.terminate()
        out, err = app.communicate(timeout=30)
    assert "Traceback" not in err, err


def _deny_write_execute() -> None:
    """In the child before exec: no memory both writable and executable, ever (Linux >= 6.3,
    PR_SET_MDWE), which is what the unit's MemoryDenyWriteExecute=true asks of the daemon."""
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        raise OSError(ctypes.get_errno(), "PR_SET_MDWE")


def test_the_frozen_program_works_without_writable_executable_memory(bundle, tmp_path, key_file):
    program = str(bundle / "dsnode" / "dsnode")
    env = env_for(tmp_path / "home", key_file)
    try:
        check = subprocess.run([program, "selftest"], capture_output=True, text=True, env=env, timeout=120,
                               preexec_fn=_deny_write_execute)
    except OSError as e:  # subprocess re-raises the child's failure before exec
        pytest.skip(f"this kernel cannot deny writable executable memory (PR_SET_MDWE): {e}")
    assert check.returncode == 0, check.stdout + check.stderr
