import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Cli:
    """Runs the real `dsnode` entry point in a child process, as a user's shell would."""

    def __init__(self, home: Path, key_file: Path, lang: str = "en") -> None:
        self.home = home
        self.key_file = key_file
        self.lang = lang

    def env(self, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DSNODE_")}
        env.update({"DSNODE_HOME": str(self.home), "DSNODE_KEY_FILE": str(self.key_file),
                    "DSNODE_LANG": self.lang, "DSNODE_CONFIG": str(self.home.parent / "none.toml")})
        env.update(extra)
        return env

    def run(self, *args: str, ok: bool = True, env: dict | None = None, input: str | None = None):
        proc = subprocess.run(
            [sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=ROOT,
            env=env or self.env(), input=input, timeout=120,
        )
        if ok:
            assert proc.returncode == 0, f"dsnode {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
        return proc


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "store.key"
    path.write_text("edge-box passphrase 2026\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def cli(tmp_path, key_file) -> Cli:
    return Cli(tmp_path / "home", key_file)


@pytest.fixture
def initialised(cli) -> Cli:
    cli.run("init", "--name", "box-1", "--kdf", "minimum")
    return cli
