"""What a benchmark node is opened with, in the benchmark's own process and in a node process
(:mod:`bench.node_process`) alike: sync timers for a loopback space, and each node's passphrase."""

from __future__ import annotations

from appliance.domain.sync import SyncTimers

TIMERS = SyncTimers(backoff_initial=0.05, backoff_max=0.5, reconcile_poll=0.5, stop_timeout=1.0, resend_after=0.5)


def passphrase(label: str) -> bytes:
    """The store passphrase of benchmark node ``label`` (throwaway stores)."""
    return b"passphrase " + label.encode()
