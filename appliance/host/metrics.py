"""Prometheus metrics of the running node (package ``prometheus_client``), read at each scrape.

Nothing is counted twice: the figures are the node's own (sync counters, queues, the evidence
log's size), collected when Prometheus asks, so they cannot drift from what `dsnode space
status` shows.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from appliance.errors import ApplianceError

log = logging.getLogger(__name__)


class _ErrorCount(logging.Handler):
    """Counts the log records at ERROR and above (a bug or a failure someone should look at)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class NodeMetrics:
    def __init__(self, host) -> None:
        self.host = host
        self.registry = CollectorRegistry(auto_describe=False)
        self.errors = _ErrorCount()
        self.registry.register(self)

    def attach_error_count(self) -> None:
        logging.getLogger("appliance").addHandler(self.errors)

    def detach_error_count(self) -> None:
        logging.getLogger("appliance").removeHandler(self.errors)

    def exposition(self) -> str:
        return generate_latest(self.registry).decode("utf-8")

    def collect(self):
        node = self.host.node
        up = GaugeMetricFamily("dsnode_up", "1 while the node runs", value=1 if self.host.state == "running" else 0)
        yield up
        yield GaugeMetricFamily("dsnode_uptime_seconds", "seconds since the node started",
                                value=time.monotonic() - self.host.started)
        try:
            spaces = node.sync.status()
        except ApplianceError as e:
            log.warning("metrics: cannot read the spaces: %s", e.message("en"))
            spaces = []
        connected = GaugeMetricFamily("dsnode_space_connected", "1 when connected to the space's broker",
                                      labels=["space"])
        queued = GaugeMetricFamily("dsnode_sync_queue", "outbox messages not yet acknowledged by the broker",
                                   labels=["space"])
        quarantined = GaugeMetricFamily("dsnode_sync_quarantined", "received messages kept to be tried again",
                                        labels=["space"])
        sent = CounterMetricFamily("dsnode_messages_sent", "messages the broker acknowledged", labels=["space"])
        received = CounterMetricFamily("dsnode_messages_received", "received messages applied", labels=["space"])
        dropped = CounterMetricFamily("dsnode_messages_dropped", "received messages dropped, by reason",
                                      labels=["space", "reason"])
        for s in spaces:
            connected.add_metric([s.space_id], 1 if s.connected else 0)
            queued.add_metric([s.space_id], s.queued)
            quarantined.add_metric([s.space_id], s.quarantined)
            sent.add_metric([s.space_id], s.sent)
            received.add_metric([s.space_id], s.received)
            for reason, n in sorted(s.dropped.items()):
                dropped.add_metric([s.space_id, reason], n)
        yield from (connected, queued, quarantined, sent, received, dropped)
        try:
            states = Counter(n.state for n in node.contracts.list())
        except ApplianceError:
            states = Counter()
        negotiations = GaugeMetricFamily("dsnode_negotiations", "contract negotiations by state", labels=["state"])
        for state, n in sorted(states.items()):
            negotiations.add_metric([state], n)
        yield negotiations
        transfers = GaugeMetricFamily("dsnode_transfers", "data transfers by role and state", labels=["role", "state"])
        moving = GaugeMetricFamily("dsnode_transfer_bytes", "bytes received or served so far by transfers under way",
                                   labels=["role"])
        try:
            rows = node.transfers.list()
        except ApplianceError:
            rows = []
        for (role, state), n in sorted(Counter((t.role, t.state) for t in rows).items()):
            transfers.add_metric([role, state], n)
        for role in ("provider", "consumer"):
            moving.add_metric([role], sum(t.bytes_done for t in rows if t.role == role and t.state == "STARTED"))
        yield transfers
        yield moving
        try:
            size = node.evidence.size()
        except ApplianceError:
            size = 0
        yield GaugeMetricFamily("dsnode_evidence_entries", "entries in the evidence log", value=size)
        taken = CounterMetricFamily("dsnode_watch_files_taken", "watched files that became resource versions",
                                    labels=["folder"])
        failed = CounterMetricFamily("dsnode_watch_files_failed", "watched files that could not be taken",
                                     labels=["folder"])
        for w in self.host.watchers.watchers:
            taken.add_metric([str(w.folder)], w.taken)
            failed.add_metric([str(w.folder)], w.failed)
        yield taken
        yield failed
        yield CounterMetricFamily("dsnode_control_requests", "CLI commands the control API ran",
                                  value=self.host.requests_served)
        yield CounterMetricFamily("dsnode_errors", "log records at ERROR or above since start",
                                  value=self.errors.count)
