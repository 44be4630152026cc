"""The installers under test: `packaging/build.sh` builds them into dist/, or the ones there are
used when they are newer than every source file they are made of."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
BUNDLE_SOURCES = ("appliance", "edge", "assets", "packaging/pyinstaller")
DEB_SOURCES = (*BUNDLE_SOURCES, "packaging")


def newest_source(sources: tuple[str, ...]) -> float:
    newest = 0.0
    for top in sources:
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


def _fresh(sources: tuple[str, ...], *paths: Path) -> bool:
    return all(p.exists() for p in paths) and min(p.stat().st_mtime for p in paths) > newest_source(sources)


def _build(what: str) -> None:
    proc = subprocess.run([str(ROOT / "packaging" / "build.sh"), what], capture_output=True, text=True,
                          cwd=ROOT, timeout=900, env={**os.environ, "DEB_LEVEL": "1"})
    assert proc.returncode == 0, f"packaging/build.sh {what} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@contextlib.contextmanager
def _build_lock():
    """One test session at a time checks and builds dist/ (others may run the suite meanwhile)."""
    (ROOT / "build").mkdir(exist_ok=True)
    with open(ROOT / "build" / "packaging-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """A private copy of dist/ (the one-dir and one-file bundles and, where dpkg-deb is, the .deb),
    built first when missing or stale; a copy, so another session rebuilding dist/ cannot touch it."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        pytest.skip("PyInstaller is not installed (pip install -e '.[build]')")
    with_deb = shutil.which("dpkg-deb") is not None
    with _build_lock():
        if not _fresh(BUNDLE_SOURCES, DIST / "dsnode" / "dsnode", DIST / "dsnode-edge"):
            _build("edge")
        deb = deb_path() if with_deb else None
        if deb and (not _fresh(DEB_SOURCES, deb) or deb.stat().st_mtime < (DIST / "dsnode" / "dsnode").stat().st_mtime):
            _build("deb")
        copy = tmp_path_factory.mktemp("dist")
        shutil.copytree(DIST / "dsnode", copy / "dsnode", symlinks=True)
        shutil.copy2(DIST / "dsnode-edge", copy / "dsnode-edge")
        if deb:
            shutil.copy2(deb, copy / deb.name)
    return copy


@pytest.fixture(scope="session")
def bundle(built) -> Path:
    """A folder with dsnode/ (one-dir) and dsnode-edge (one-file)."""
    return built


@pytest.fixture(scope="session")
def deb(built) -> Path:
    """The dsnode-edge .deb of the current bundle."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed: the Debian package cannot be built here")
    return built / deb_path().name


DESKTOP_SOURCES = (*BUNDLE_SOURCES, "ui")


@pytest.fixture(scope="session")
def desktop_bundle(tmp_path_factory) -> Path:
    """A private copy of dist/dsnode-desktop/ (the app, and `dsnode` linked to it), built when stale."""
    try:
        import PyInstaller  # noqa: F401
        import PySide6  # noqa: F401
    except ImportError as e:
        pytest.skip(f"no desktop build here: {e.name} is not installed")
    with _build_lock():
        if not _fresh(DESKTOP_SOURCES, DIST / "dsnode-desktop" / "dsnode-desktop", DIST / "dsnode-desktop-onefile"):
            _build("desktop")
        copy = tmp_path_factory.mktemp("dist-desktop") / "dsnode-desktop"
        shutil.copytree(DIST / "dsnode-desktop", copy, symlinks=True)
    return copy


@pytest.fixture(scope="session")
def desktop_deb(desktop_bundle, tmp_path_factory) -> Path:
    """The dsnode-desktop .deb of the current desktop bundle."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed: the Debian package cannot be built here")
    path = DIST / deb_path().name.replace("dsnode-edge_", "dsnode-desktop_")
    with _build_lock():
        bundle = DIST / "dsnode-desktop" / "dsnode-desktop"
        if not _fresh(DEB_SOURCES, path) or path.stat().st_mtime < bundle.stat().st_mtime:
            _build("desktop-deb")
        copy = tmp_path_factory.mktemp("dist-desktop-deb") / path.name
        shutil.copy2(path, copy)
    return copy
