"""The headless installer's bundle (PyInstaller, `packaging/pyinstaller/dsnode-edge.spec`): its
sizes, one-dir (what the Debian package installs) and one-file, and how long the frozen program
takes to start, beside the virtual environment's `python -m edge` in the same run.

Start: `dsnode --version` (the interpreter, the imports of every command, the argument parser),
and `dsnode run` from the process start to its control API answering (a store with the minimum
key derivation, so the figure is the program's start, not Argon2). The three programs take turns,
so a disturbance of the machine falls on all of them alike; each figure is the median of its runs.
The bundle is built first (`packaging/build.sh edge`) when dist/ lacks it or a source is newer;
the desktop build's sizes are shown when dist/ holds it (`packaging/build.sh desktop`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from appliance.host import ControlClient
from bench.bench_control import stop_process
from bench.harness import Result, rnd

DESCRIPTION = "installer bundles: one-dir and one-file sizes, frozen start (--version, run to ready) vs the venv"

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
SOURCES = ("appliance", "edge", "assets", "packaging/pyinstaller")
ONE_FILE_GOAL_MB = 40
DESKTOP_GOAL_MB = 120
START_GOAL = 1.5  # frozen start / venv start


def _newest_source() -> float:
    newest = 0.0
    for top in SOURCES:
        for dirpath, dirnames, filenames in os.walk(ROOT / top):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            newest = max([newest, *((Path(dirpath) / n).stat().st_mtime for n in filenames)])
    return newest


def ensure_bundle(say) -> tuple[Path, Path]:
    one_dir, one_file = DIST / "dsnode" / "dsnode", DIST / "dsnode-edge"
    if not (one_dir.exists() and one_file.exists()
            and min(one_dir.stat().st_mtime, one_file.stat().st_mtime) > _newest_source()):
        say("building the bundle (packaging/build.sh edge) …")
        start = time.perf_counter()
        subprocess.run([str(ROOT / "packaging" / "build.sh"), "edge"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        say(f"built in {time.perf_counter() - start:.0f} s")
    return one_dir, one_file


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def _version_time(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command + ["--version"], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _ready_time(command: list[str], env: dict, home: Path) -> float:
    client = ControlClient(home)
    start = time.perf_counter()
    proc = subprocess.Popen(command + ["run"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not client.running():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} run did not start")
            time.sleep(0.01)
        return time.perf_counter() - start
    finally:
        stop_process(proc)


def run(quick: bool, say) -> Result:
    one_dir, one_file = ensure_bundle(say)
    sizes = {"one_dir_mb": rnd(_size_mb(one_dir.parent), 1), "one_file_mb": rnd(_size_mb(one_file), 1)}
    say(f"headless: one-dir {sizes['one_dir_mb']} MB, one-file {sizes['one_file_mb']} MB")
    desktop_dir, desktop_file = DIST / "dsnode-desktop", DIST / "dsnode-desktop-onefile"
    if desktop_dir.is_dir() and desktop_file.exists():  # `packaging/build.sh desktop` made them
        sizes.update(desktop_one_dir_mb=rnd(_size_mb(desktop_dir), 1),
                     desktop_one_file_mb=rnd(_size_mb(desktop_file), 1))
        say(f"desktop: one-dir {sizes['desktop_one_dir_mb']} MB, one-file {sizes['desktop_one_file_mb']} MB")
    programs = {"venv": [sys.executable, "-m", "edge"], "one_dir": [str(one_dir)], "one_file": [str(one_file)]}
    rounds = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="dsnode-bench-bundle-") as tmp:
        home, key = Path(tmp) / "home", Path(tmp) / "store.key"
        key.write_text("bench passphrase 2026\n")
        key.chmod(0o600)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("DSNODE_")},
               "DSNODE_HOME": str(home), "DSNODE_KEY_FILE": str(key), "DSNODE_LANG": "en",
               "DSNODE_CONFIG": str(Path(tmp) / "none.toml"), "PYTHONPATH": str(ROOT)}
        subprocess.run(programs["one_dir"] + ["init", "--name", "bench", "--kdf", "minimum"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        for command in programs.values():  # warm the page cache (and the one-file's first extraction)
            _version_time(command, env)
        version: dict[str, list[float]] = {name: [] for name in programs}
        ready: dict[str, list[float]] = {name: [] for name in programs}
        for _ in range(rounds):
            for name, command in programs.items():
                version[name].append(_version_time(command, env))
            for name, command in programs.items():
                ready[name].append(_ready_time(command, env, home))
    v = {name: statistics.median(times) for name, times in version.items()}
    r = {name: statistics.median(times) for name, times in ready.items()}
    for name in programs:
        say(f"{name:<9} --version {v[name]:.3f} s   run to ready {r[name]:.3f} s")
    figures = {**sizes, "frozen_version_s": rnd(v["one_dir"]), "frozen_one_file_version_s": rnd(v["one_file"]),
               "frozen_ready_s": rnd(r["one_dir"]), "frozen_one_file_ready_s": rnd(r["one_file"])}
    ratio = {"version_vs_venv": rnd(v["one_dir"] / v["venv"], 2),
             "one_file_version_vs_venv": rnd(v["one_file"] / v["venv"], 2),
             "ready_vs_venv": rnd(r["one_dir"] / r["venv"], 2),
             "one_file_ready_vs_venv": rnd(r["one_file"] / r["venv"], 2)}
    return Result(
        figures=figures,
        baseline={"venv_version_s": rnd(v["venv"]), "venv_ready_s": rnd(r["venv"])},
        ratio=ratio,
        target={"one_file_mb": f"< {ONE_FILE_GOAL_MB}", "desktop_one_file_mb": f"< {DESKTOP_GOAL_MB}",
                "version_vs_venv": f"<= {START_GOAL}", "ready_vs_venv": f"<= {START_GOAL}"},
        met={"one_file_mb": sizes["one_file_mb"] < ONE_FILE_GOAL_MB,
             "desktop_one_file_mb": sizes["desktop_one_file_mb"] < DESKTOP_GOAL_MB
             if "desktop_one_file_mb" in sizes else None,
             "version_vs_venv": ratio["version_vs_venv"] <= START_GOAL,
             "ready_vs_venv": ratio["ready_vs_venv"] <= START_GOAL},
        notes={"rounds": rounds, "statistic": "median", "frozen": "one-dir (what dsnode-edge installs)",
               "one_file": "unpacks itself into a temporary folder at every start",
               "bundle": "PyInstaller one-dir and one-file, stripped, no UPX; start times of the headless one (no Qt)"},
    )


if __name__ == "__main__":
    print(json.dumps(run(True, print).figures))
