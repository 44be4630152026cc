"""A CLI command through the running node's control API against the same command opening the
store itself, in the same run; and the requests per second the API serves while the node syncs.

The setup is what an edge box has: an operator node running with its embedded broker, and a
member node (the default ``moderate`` key derivation, as `dsnode init` makes it) that joined the
space. `dsnode contract list` runs as a new process each time, as a user or a script runs it:
once with the member's node stopped (the command opens the store: key derivation, SQLCipher,
migrations check, a checkpoint on close) and once with it running (`dsnode run`: the command is
sent to the node). Rounds alternate, A B A B, so that drift on a shared machine hits both; the
median of each is kept. Then, with the member running and connected, client threads send
``GET /v1/spaces`` (a read that touches the store and the sync state) for a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from appliance.host import ControlClient
from appliance.host.client import _UnixConnection
from bench.harness import Result, rnd
from edge.broker_process import free_port

DESCRIPTION = "a CLI command through the running node's API vs opening the store; API reads per second while syncing"

ROOT = Path(__file__).resolve().parents[1]


class CliProcess:
    def __init__(self, home: Path, key: Path) -> None:
        self.home, self.key = home, key
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("DSNODE_")},
                    "DSNODE_HOME": str(home), "DSNODE_KEY_FILE": str(key), "DSNODE_LANG": "en",
                    "DSNODE_CONFIG": str(home.parent / "none.toml"), "PYTHONPATH": str(ROOT)}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, env=self.env,
                              cwd=ROOT, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"dsnode {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def start(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "edge", *(args or ("run",))], env=self.env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = ControlClient(self.home)
        deadline = time.monotonic() + 60
        while not client.running():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dsnode {' '.join(args) or 'run'} did not start")
            time.sleep(0.05)
        return proc


def stop_process(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def _timed(cli: CliProcess, args: tuple[str, ...], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        cli.run(*args)
        out.append(time.perf_counter() - start)
    return out


def _reads_per_second(socket_file: Path, seconds: float, threads: int) -> tuple[float, float]:
    counts = [0] * threads
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            conn = _UnixConnection(socket_file, 10)
            conn.request("GET", "/v1/spaces")
            r = conn.getresponse()
            body = r.read()
            conn.close()
            if r.status != 200 or not json.loads(body):
                raise RuntimeError(f"GET /v1/spaces answered {r.status}")
            counts[i] += 1
            latencies.append(time.perf_counter() - t0)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    return sum(counts) / elapsed, statistics.median(latencies) * 1000


@contextlib.contextmanager
def cli_space(root: Path):
    """An operator running with its embedded broker and a member admitted to its space (the default
    key derivation, as `dsnode init` makes it), each driven by the real CLI; the operator stops after."""
    key = root / "store.key"
    key.write_text("bench passphrase 2026\n")
    key.chmod(0o600)
    operator, member = CliProcess(root / "operator", key), CliProcess(root / "member", key)
    port = free_port()
    operator.run("operator", "init", "--space", "bench-space", "--name", "bench", "--broker-host", "127.0.0.1",
                 "--broker-port", str(port), "--auto-admit", "--kdf", "minimum")
    op = operator.start("operator", "run", "--embedded-broker")
    try:
        code = operator.run("operator", "invite").stdout.strip().splitlines()[-1]
        member.run("init", "--name", "box-1")
        node = member.start()
        try:
            member.run("space", "join", code, "--yes")
            deadline = time.monotonic() + 60
            while json.loads(member.run("space", "status", "--json").stdout)[0]["membership"] != "member":
                if time.monotonic() > deadline:
                    raise RuntimeError("the member was not admitted")
                time.sleep(0.2)
        finally:
            stop_process(node)
        yield operator, member
    finally:
        stop_process(op)


def run(quick: bool, say) -> Result:
    rounds, per_round, rps_seconds = (2, 3, 2.0) if quick else (3, 5, 5.0)
    command = ("contract", "list")
    with tempfile.TemporaryDirectory(prefix="dsnode-bench-control-") as tmp, cli_space(Path(tmp)) as (_, member):
        say(f"space ready; timing `dsnode {' '.join(command)}` {rounds} x {per_round} each way")
        alone: list[float] = []
        through: list[float] = []
        for r in range(rounds):
            alone += _timed(member, command, per_round)
            node = member.start()
            try:
                through += _timed(member, command, per_round)
            finally:
                stop_process(node)
            say(f"round {r + 1}: alone {statistics.median(alone) * 1000:.0f} ms, "
                f"through the running node {statistics.median(through) * 1000:.0f} ms")
        node = member.start()
        try:
            rps, latency = _reads_per_second(ControlClient(member.home).socket_file, rps_seconds, 4)
            spaces = ControlClient(member.home).get("/v1/spaces")
        finally:
            stop_process(node)
        say(f"GET /v1/spaces: {rps:.0f}/s, median {latency:.1f} ms "
            f"(4 clients, connected: {spaces[0]['connected']})")
    alone_ms, through_ms = statistics.median(alone) * 1000, statistics.median(through) * 1000
    ratio = through_ms / alone_ms
    return Result(
        figures={"cli_through_running_node_ms": rnd(through_ms, 1), "api_reads_per_s": rnd(rps, 0),
                 "api_read_median_ms": rnd(latency, 2)},
        baseline={"cli_opening_the_store_ms": rnd(alone_ms, 1)},
        ratio={"cli": rnd(ratio), "reads_vs_goal": rnd(rps / 500)},
        target={"cli": "<= 1x the same command opening the store", "reads": ">= 500/s while syncing"},
        met={"cli": ratio <= 1.0, "reads": rps >= 500},
        notes={"command": "dsnode " + " ".join(command), "runs_each": rounds * per_round,
               "kdf": "moderate (the default)", "space_connected": bool(spaces[0]["connected"])},
    )
