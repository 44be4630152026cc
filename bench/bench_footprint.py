"""What a running node costs a box: `dsnode run` from start to ready, then its resident memory and
CPU while idle with a space connected, beside a bare Python interpreter measured in the same run.

The space is an operator node running with its embedded broker (`dsnode operator run
--embedded-broker`) and one member that joined it. "Ready" is the moment the member's control API
answers ``/healthz`` with the space connected. Idle: the member does nothing but keep its
connection (MQTT keep-alive, presence, periodic reconciliation and counter saves) for a minute
(15 s with ``--quick``); CPU is the process's user+system time over that span, RSS is read from
``/proc`` at the end. The baseline is ``python -c`` sleeping for the same span.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from appliance.host import ControlClient
from bench.bench_control import cli_space, stop_process
from bench.harness import Result, rnd

DESCRIPTION = "dsnode run: start to ready, idle RSS and CPU with a space connected, vs a bare interpreter"

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _idle(pid: int, seconds: float) -> tuple[float, float]:
    """(CPU percent over ``seconds``, RSS in MB at the end)."""
    cpu0, t0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = _cpu_seconds(pid), time.monotonic()
    return 100 * (cpu1 - cpu0) / (t1 - t0), _rss_mb(pid)


def run(quick: bool, say) -> Result:
    idle_seconds = 15.0 if quick else 60.0
    with tempfile.TemporaryDirectory(prefix="dsnode-bench-footprint-") as tmp, cli_space(Path(tmp)) as (_, member):
        client = ControlClient(member.home)
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "edge", "run"], env=member.env, cwd=member.env["PYTHONPATH"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("dsnode run stopped")
                if client.running():
                    health = client.get("/healthz")
                    if health["spaces"] and all(s["connected"] for s in health["spaces"]):
                        break
                time.sleep(0.02)
            ready = time.perf_counter() - start
            say(f"dsnode run ready (space connected) in {ready:.2f} s; idle for {idle_seconds:.0f} s")
            cpu, rss = _idle(proc.pid, idle_seconds)
            connected = all(s["connected"] for s in client.get("/healthz")["spaces"])
        finally:
            stop_process(proc)
    bare = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({idle_seconds + 5})"])
    try:
        time.sleep(1)
        bare_cpu, bare_rss = _idle(bare.pid, min(idle_seconds, 10.0))
    finally:
        bare.kill()
        bare.wait()
    say(f"daemon: {rss:.1f} MB, {cpu:.2f} % CPU; bare interpreter: {bare_rss:.1f} MB, {bare_cpu:.2f} % CPU")
    return Result(
        figures={"ready_s": rnd(ready, 2), "idle_rss_mb": rnd(rss, 1), "idle_cpu_percent": rnd(cpu, 3)},
        baseline={"bare_python_rss_mb": rnd(bare_rss, 1), "bare_python_cpu_percent": rnd(bare_cpu, 3)},
        ratio={"rss_vs_bare": rnd(rss / bare_rss, 2), "rss_vs_goal": rnd(rss / 80, 2),
               "cpu_vs_goal": rnd(cpu / 1.0, 3)},
        target={"idle_rss_mb": "< 80", "idle_cpu_percent": "< 1"},
        met={"idle_rss_mb": rss < 80, "idle_cpu_percent": cpu < 1.0},
        notes={"idle_seconds": idle_seconds, "space_connected": connected, "kdf": "moderate (the default)",
               "ready": "from the process start to /healthz with the space connected"},
    )


if __name__ == "__main__":
    print(json.dumps(run(True, print).figures))
