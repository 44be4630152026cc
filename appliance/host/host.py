"""NodeHost: the one running node of a machine, whether the daemon or the desktop app holds it.

It opens nothing itself: the adapter opens the :class:`~appliance.node.Node` (with the key from
wherever it comes) and hands it over. The host starts the node's background work, serves the
local control API (:mod:`appliance.host.control`) so that the CLI and scripts work against the
running node, keeps the counters in the store every few seconds, tells when a join or listing
request waits for the operator, and stops everything in order.

The CLI commands themselves are the adapter's: the host runs them through ``runner(argv, cwd,
lang, write) -> exit code`` (the core never imports the CLI).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from http import HTTPStatus
from pathlib import Path

from appliance import __version__, i18n
from appliance.errors import ApplianceError
from appliance.host import paths
from appliance.host.control import ControlServer, Emit, Endpoint, Request, RequestRefused
from appliance.host.metrics import NodeMetrics
from appliance.host.watch import Watchers

log = logging.getLogger(__name__)

Runner = Callable[[list[str], str, str, Callable[[str, str], None]], int]

MAX_ARGS = 256
MAX_ARG = 64 * 1024
EVENT_QUEUE = 1000  # events a slow reader of the stream may fall behind by before it is told it missed some


@dataclass(frozen=True)
class RequestsWaiting:
    """The operator has join (admission) or listing requests waiting for a decision."""

    space_id: str
    admissions: int
    listings: int
    new_admissions: tuple[int, ...] = ()
    new_listings: tuple[int, ...] = ()


class NodeHost:
    """Runs ``node`` and serves its control API until :meth:`stop`."""

    def __init__(self, node, *, runner: Runner | None = None, tcp_port: int | None = None,
                 counters_every: float = 5.0, notices_every: float = 2.0, checkpoint_every: float = 3600.0, watch=(),
                 interfaces: tuple[str, ...] = ()) -> None:
        self.node = node
        self.runner = runner
        self.home = Path(node.home)
        self.started = time.monotonic()
        self.state = "starting"
        self._stop = threading.Event()
        self._every = (counters_every, notices_every)
        self._checkpoint_every = checkpoint_every
        self._workers: list[threading.Thread] = []
        self._seen_admissions: set[int] | None = None
        self._seen_listings: set[int] | None = None
        self.metrics = NodeMetrics(self)
        self.watchers = Watchers(node, watch)
        self.interfaces = tuple(interfaces)
        if self.interfaces:  # data is served where peers find this node, not on every address
            node.transfers.host = self.interfaces[0]
        token = self._token() if tcp_port is not None else None
        self.control = ControlServer(self._endpoints(), paths.socket_path(self.home), tcp_port=tcp_port, token=token)
        self.requests_served = 0
        self._owns_work = False

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the node's background work (unless it runs already) and serve the API."""
        self._owns_work = not self.node.sync.running
        if self._owns_work:
            self.node.start()
        try:
            self.control.start()
        except BaseException:
            if self._owns_work:
                self.node.stop()
            raise
        _write_private(self.home / paths.PID_NAME, f"{os.getpid()}\n")
        self.watchers.start()
        try:
            node_peers = getattr(self.node, "peers", None)
            if node_peers is not None and self.interfaces:
                node_peers.start(self.interfaces)
        except ApplianceError as e:  # discovery is a convenience: the node runs without it
            log.warning("finding peers on the local network is off: %s", e.message("en"))
        for name, fn in (("counters", self._keep_counters), ("notices", self._watch_requests)):
            t = threading.Thread(target=fn, name=f"dsnode-host-{name}", daemon=True)
            t.start()
            self._workers.append(t)
        self.metrics.attach_error_count()
        self.state = "running"
        log.info("node running; control API on %s", self.control.socket_file)

    def stop(self) -> None:
        """Stop serving (requests under way finish), stop the node's work, keep the counters."""
        if self.state == "stopped":
            return
        self.state = "stopping"
        self._stop.set()
        self.metrics.detach_error_count()
        self.watchers.stop()
        try:
            self.control.stop()
        finally:
            for t in self._workers:
                t.join(timeout=10)
            (self.home / paths.PID_NAME).unlink(missing_ok=True)
            try:
                if self._owns_work:
                    self.node.stop()
            finally:
                try:
                    self.node.save_counters()
                except ApplianceError as e:
                    log.warning("could not keep the counters: %s", e.message("en"))
                self.state = "stopped"

    def __enter__(self) -> NodeHost:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _token(self) -> str:
        """The loopback listener's token: kept in ``<home>/control.token`` (0600) across restarts."""
        path = paths.token_path(self.home)
        try:
            text = path.read_text(encoding="ascii").strip()
            if len(text) >= 32:
                return text
        except (OSError, UnicodeDecodeError):
            pass
        text = secrets.token_urlsafe(32)
        _write_private(path, text + "\n")
        return text

    # --- background duties --------------------------------------------------------------------

    def _keep_counters(self) -> None:
        """Every few seconds the counters; every ``checkpoint_every`` a signed evidence checkpoint,
        published for the operators to witness, when the log grew since the last one."""
        last_checkpoint = time.monotonic()
        while not self._stop.wait(self._every[0]):
            try:
                self.node.save_counters()
            except ApplianceError as e:
                log.warning("could not keep the counters: %s", e.message("en"))
            if time.monotonic() - last_checkpoint >= self._checkpoint_every:
                last_checkpoint = time.monotonic()
                self.checkpoint()

    def checkpoint(self) -> bool:
        """Sign (and publish) a checkpoint if entries were added since the last one; whether it did."""
        try:
            latest = self.node.evidence.latest_checkpoint()
            if latest is not None and latest.size >= self.node.evidence.size():
                return False
            if not self.node.membership.publish_checkpoint():
                self.node.evidence.checkpoint()
            return True
        except ApplianceError as e:
            log.warning("could not sign the evidence checkpoint: %s", e.message("en"))
            return False

    def _watch_requests(self) -> None:
        while True:
            try:
                self.check_requests()
            except ApplianceError as e:
                log.warning("could not read the operator's queues: %s", e.message("en"))
            if self._stop.wait(self._every[1]):
                return

    def check_requests(self) -> RequestsWaiting | None:
        """Tell (log line and event) when new join or listing requests wait for the operator."""
        operator = self.node.operator
        if not operator.is_operator:
            return None
        admissions = {a.id for a in operator.admissions("pending")}
        listings = {r.id for r in operator.listings("pending")}
        first = self._seen_admissions is None
        new_a = admissions - (self._seen_admissions or set())
        new_l = listings - (self._seen_listings or set())
        self._seen_admissions, self._seen_listings = admissions, listings
        if not (new_a or new_l) or (first and not (admissions or listings)):
            return None
        notice = RequestsWaiting(operator.space().space_id, len(admissions), len(listings),
                                 tuple(sorted(new_a)), tuple(sorted(new_l)))
        log.warning("%s", i18n.t("host.requests_waiting", notice.admissions, notice.listings, lang="en"))
        self.node.bus.emit(notice)
        return notice

    # --- the control API ----------------------------------------------------------------------

    def _endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/healthz", self._healthz),
            Endpoint("GET", "/v1/health", self._healthz),
            Endpoint("GET", "/v1/status", self._status),
            Endpoint("GET", "/v1/spaces", self._spaces),
            Endpoint("GET", "/v1/events", self._events, streams=True),
            Endpoint("POST", "/v1/cli", self._cli, streams=True),
            Endpoint("GET", "/metrics", self._metrics, text=True),
        ]

    def health(self) -> dict:
        spaces = self.node.sync.status()
        return {"status": "ok" if self.state == "running" else self.state, "pid": os.getpid(),
                "version": __version__, "did": self.node.identity.did,
                "uptime": round(time.monotonic() - self.started, 1),
                "spaces": [{"space_id": s.space_id, "state": s.state, "connected": s.connected} for s in spaces]}

    def _healthz(self, request: Request):
        body = self.health()
        return (HTTPStatus.OK if body["status"] == "ok" else HTTPStatus.SERVICE_UNAVAILABLE), body

    def _status(self, request: Request):
        return HTTPStatus.OK, asdict(self.node.status())

    def _spaces(self, request: Request):
        return HTTPStatus.OK, [asdict(s) for s in self.node.sync.status()]

    def _metrics(self, request: Request):
        return HTTPStatus.OK, self.metrics.exposition()

    def _events(self, request: Request, emit: Emit) -> None:
        """Every event of the node's bus as it happens, one JSON line each; a heartbeat line every
        15 seconds of quiet; ``{"missed": n}`` when this reader fell behind and events were skipped."""
        import queue

        wanted = set(request.query.get("type", []))
        q: queue.Queue = queue.Queue(maxsize=EVENT_QUEUE)
        missed = 0

        def on_event(event: object) -> None:
            nonlocal missed
            if wanted and type(event).__name__ not in wanted:
                return
            try:
                q.put_nowait(event)
            except queue.Full:
                missed += 1

        unsubscribe = self.node.bus.subscribe(on_event)
        try:
            emit({"event": "hello", "did": self.node.identity.did})
            quiet = 0.0
            while not self.control.stopping.is_set():
                try:
                    event = q.get(timeout=0.5)
                except queue.Empty:
                    quiet += 0.5
                    if quiet >= 15:
                        emit({"event": "heartbeat"})
                        quiet = 0.0
                    continue
                quiet = 0.0
                if missed:
                    emit({"missed": missed})
                    missed = 0
                emit(event_line(event))
        finally:
            unsubscribe()

    def _cli(self, request: Request, emit: Emit) -> None:
        """Run one `dsnode` command line against this node; its output comes back as it is written."""
        argv, cwd, lang = _cli_body(request.body)
        if self.runner is None:
            raise RequestRefused(HTTPStatus.NOT_IMPLEMENTED, "no_cli", "control.refused.no_cli")

        gone = False

        def write(stream: str, text: str) -> None:
            nonlocal gone
            if text and not gone:
                try:
                    emit({stream: text})
                except OSError:  # the client went away (Ctrl-C): the command still finishes, unheard
                    gone = True

        emit({"started": True})
        code = self.runner(argv, cwd, lang, write)
        self.requests_served += 1
        if not gone:
            emit({"exit": int(code)})


def _cli_body(body: object) -> tuple[list[str], str, str]:
    """The body of POST /v1/cli, checked whole before anything runs."""
    bad = (HTTPStatus.BAD_REQUEST, "bad_request")
    if not isinstance(body, dict):
        raise RequestRefused(*bad, "control.refused.body_object")
    unknown = set(body) - {"argv", "cwd", "lang"}
    if unknown:
        raise RequestRefused(*bad, "control.refused.unknown_field", ", ".join(sorted(map(str, unknown))))
    argv = body.get("argv")
    if (not isinstance(argv, list) or not argv or len(argv) > MAX_ARGS
            or not all(isinstance(a, str) and len(a) <= MAX_ARG and "\x00" not in a for a in argv)):
        raise RequestRefused(*bad, "control.refused.argv", MAX_ARGS)
    cwd = body.get("cwd")
    if not isinstance(cwd, str) or "\x00" in cwd or not os.path.isabs(cwd):
        raise RequestRefused(*bad, "control.refused.cwd")
    lang = body.get("lang")
    if lang is not None and lang not in i18n.LANGS:
        raise RequestRefused(*bad, "control.refused.lang", ", ".join(i18n.LANGS))
    return argv, cwd, lang or i18n.get_lang()


def event_line(event: object) -> dict:
    data = asdict(event) if is_dataclass(event) and not isinstance(event, type) else {"repr": repr(event)}
    return {"event": type(event).__name__, "ts": time.strftime("%Y-%m-%dT%H:%M:%S"), **data}


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
