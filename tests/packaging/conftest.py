"""The installers under test: `packaging/build.sh` builds them into dist/, or the ones there are
used when they are newer than every source file they are made of."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
SOURCES = ("appliance", "edge", "assets", "packaging")


def newest_source() -> float:
    newest = 0.0
    for top in SOURCES:
        for dirpath, dirnames, filenames in os.walk(ROOT / top):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                newest = max(newest, (Path(dirpath) / name).stat().st_mtime)
    return newest


def version() -> str:
    import appliance

    return appliance.__version__


def deb_path() -> Path:
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    return DIST / f"dsnode-edge_{version()}_{arch}.deb"


def _fresh(*paths: Path) -> bool:
    return all(p.exists() for p in paths) and min(p.stat().st_mtime for p in paths) > newest_source()


def _build(what: str) -> None:
    proc = subprocess.run([str(ROOT / "packaging" / "build.sh"), what], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)
    assert proc.returncode == 0, f"packaging/build.sh {what} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="session")
def bundle() -> Path:
    """dist/dsnode/ (one-dir) and dist/dsnode-edge (one-file), built when missing or stale."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        pytest.skip("PyInstaller is not installed (pip install -e '.[build]')")
    if not _fresh(DIST / "dsnode" / "dsnode", DIST / "dsnode-edge"):
        _build("edge")
    return DIST


@pytest.fixture(scope="session")
def deb(bundle) -> Path:
    """The dsnode-edge .deb of the current bundle."""
    if subprocess.run(["sh", "-c", "command -v dpkg-deb"], capture_output=True).returncode:
        pytest.skip("dpkg-deb is not installed: the Debian package cannot be built here")
    path = deb_path()
    if not _fresh(path) or path.stat().st_mtime < (bundle / "dsnode" / "dsnode").stat().st_mtime:
        _build("deb")
    return path
