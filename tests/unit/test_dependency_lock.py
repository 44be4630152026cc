"""The lock file the quick start installs from agrees with the pins in pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = {}
    for spec in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        name, version = spec.split("==")
        pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _locked() -> dict[str, tuple[str, int]]:
    text = (ROOT / "packaging" / "requirements.lock").read_text(encoding="utf-8")
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if m:
            out[re.sub(r"[-_.]+", "-", m[1]).lower()] = (m[2], block.count("--hash=sha256:"))
    return out


def test_every_pin_is_locked_at_its_version_and_every_locked_package_has_hashes():
    locked = _locked()
    for name, version in _pins().items():
        assert name in locked, f"{name} is pinned in pyproject.toml but not locked: run bash packaging/lock.sh"
        assert locked[name][0] == version, f"{name}: pyproject pins {version}, the lock {locked[name][0]}"
    assert all(hashes >= 1 for _, hashes in locked.values())
    assert len(locked) > len(_pins())  # what the pins pull in is locked too
