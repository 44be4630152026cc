"""The running node's local control API: HTTP/1.0 with JSON bodies over a Unix socket.

The socket is the trust boundary. It is created owner-only (0600, in the node's home, 0700) and a
connection is served only when the kernel says the peer runs as this node's user (or root,
``SO_PEERCRED``). Optionally the same API listens on a loopback TCP port; there every request
must carry ``Authorization: Bearer <token>`` (the token file in the home, 0600), and a request a
browser sends (an ``Origin`` header) is refused, so a web page cannot drive the node.

A refused or malformed request changes nothing: routes validate the whole body before they act.
Each request is served in its own thread; long answers (a CLI command's output, the event stream)
are written as JSON lines while they happen. The routes are in :mod:`appliance.host.api`, the
description in ``docs/control-api.json``.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from appliance import i18n

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # a CLI command line or a request body; nothing the API takes is larger
HEADER_TIMEOUT = 10.0  # seconds a client may take to send its request (a stuck client holds one thread)


class RequestRefused(Exception):
    """A request the API does not serve: ``status`` and a catalog key for the message."""

    def __init__(self, status: HTTPStatus, code: str, key: str, *args: object) -> None:
        super().__init__(code)
        self.status, self.code, self.key, self.args_ = status, code, key, args


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: object  # the parsed JSON body (None for a GET)
    lang: str
    peer_uid: int | None


Reply = tuple[HTTPStatus, object]  # a JSON answer
Emit = Callable[[dict], None]  # a streaming route writes each JSON line through this as it happens
Route = Callable[..., Reply | None]  # (request) -> Reply, or (request, emit) -> None for a stream


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    route: Route
    streams: bool = False  # answers with JSON lines (application/x-ndjson) instead of one JSON body
    text: bool = False  # answers with text/plain (Prometheus' exposition format)


class ControlServer:
    """Serves ``endpoints`` on a Unix socket (and optionally 127.0.0.1:``tcp_port`` with ``token``)."""

    def __init__(self, endpoints: list[Endpoint], socket_file: Path, *, tcp_port: int | None = None,
                 token: str | None = None) -> None:
        self.endpoints = {(e.method, e.path): e for e in endpoints}
        self.paths = {e.path for e in endpoints}
        self.socket_file = Path(socket_file)
        self.token = token
        self.stopping = threading.Event()
        self.requests: set[threading.Thread] = set()
        self.requests_lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        self._tcp_port = tcp_port
        if tcp_port is not None and not token:
            raise ValueError("a TCP listener needs a token")

    @property
    def tcp_port(self) -> int | None:
        for s in self._servers:
            if isinstance(s, _TcpServer):
                return s.server_address[1]
        return None

    def start(self) -> None:
        self._servers.append(_bind_unix(self.socket_file, self))
        if self._tcp_port is not None:
            self._servers.append(_TcpServer(("127.0.0.1", self._tcp_port), self))
        for s in self._servers:
            t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                                 name=f"dsnode-control-{type(s).__name__}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, drain: float = 10.0) -> None:
        """Stop accepting, end the event streams, give the commands under way ``drain`` seconds
        to finish, remove the socket."""
        self.stopping.set()
        for s in self._servers:
            s.shutdown()
            s.server_close()
        for t in self._threads:
            t.join(timeout=5)
        deadline = time.monotonic() + drain
        with self.requests_lock:
            requests = list(self.requests)
        for t in requests:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        unfinished = sum(t.is_alive() for t in requests)
        if unfinished:
            log.warning("stopping with %d control request(s) still running", unfinished)
        self._servers.clear()
        self._threads.clear()
        try:
            self.socket_file.unlink()
        except FileNotFoundError:
            pass


class _Threads(socketserver.ThreadingMixIn):
    """A thread per request, tracked so that stopping waits for them, but only so long."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, control: ControlServer, family_server) -> None:
        self.control = control
        family_server.__init__(self, address, _Handler)

    def process_request(self, request, client_address) -> None:
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                             name="dsnode-control-request", daemon=True)
        with self.control.requests_lock:
            self.control.requests = {r for r in self.control.requests if r.is_alive()} | {t}
        t.start()


class _UnixServer(_Threads, socketserver.UnixStreamServer):
    def __init__(self, address, control: ControlServer) -> None:
        _Threads.__init__(self, address, control, socketserver.UnixStreamServer)


class _TcpServer(_Threads, socketserver.TCPServer):
    def __init__(self, address, control: ControlServer) -> None:
        _Threads.__init__(self, address, control, socketserver.TCPServer)


def _bind_unix(path: Path, control: ControlServer) -> _UnixServer:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        # left by a node that was killed (the store lock, taken first, says no node runs now)
        path.unlink()
    old = os.umask(0o177)  # the socket is created 0600: no window where another user may connect
    try:
        server = _UnixServer(str(path), control)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server


def peer_uid(sock: socket.socket) -> int | None:
    """The user id of the process at the other end of a Unix socket (Linux ``SO_PEERCRED``)."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (AttributeError, OSError):
        return None
    return struct.unpack("3i", raw)[1]


class _Handler(BaseHTTPRequestHandler):
    server_version = "dsnode"
    protocol_version = "HTTP/1.0"
    server: _Threads  # type: ignore[assignment]  # the server it was made for

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(HEADER_TIMEOUT)

    def address_string(self) -> str:  # a Unix peer has no address
        return "local" if isinstance(self.client_address, (str, bytes)) else str(self.client_address[0])

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the name BaseHTTPRequestHandler uses
        log.debug("control %s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        control = self.server.control
        lang = i18n.normalize(self.headers.get("Accept-Language", "").split(",")[0].strip()) or i18n.get_lang()
        try:
            uid = self._authenticate(control)
            split = urlsplit(self.path)
            endpoint = control.endpoints.get((method, split.path))
            if endpoint is None:
                if split.path in control.paths:
                    raise RequestRefused(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed",
                                         "control.refused.method", method, split.path)
                raise RequestRefused(HTTPStatus.NOT_FOUND, "not_found", "control.refused.not_found", split.path)
            body = self._body() if method != "GET" else None
            request = Request(method, split.path, parse_qs(split.query), body, lang, uid)
            with i18n.using_lang(lang):
                if endpoint.streams:
                    self._stream(endpoint.route, request)
                    return
                result = endpoint.route(request)
                assert result is not None  # only a stream answers with None
                if endpoint.text:
                    status, text = result
                    assert isinstance(text, str)
                    self._send(status, text.encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8")
                else:
                    status, payload = result
                    self._json(status, payload)
        except RequestRefused as e:
            with i18n.using_lang(lang):
                self._json(e.status, {"error": e.code, "message": i18n.t(e.key, *e.args_)})
        except (BrokenPipeError, ConnectionResetError, TimeoutError, _Ended):
            pass  # the client went away (or a stream ended early): nothing more to answer
        except Exception:  # noqa: BLE001 - one request's bug must not stop the API; it is logged
            log.exception("control API: %s %s failed", method, self.path.split("?")[0])
            try:
                with i18n.using_lang(lang):
                    self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                               {"error": "internal", "message": i18n.t("control.refused.internal")})
            except OSError:
                pass

    def _authenticate(self, control: ControlServer) -> int | None:
        if isinstance(self.server, _UnixServer):
            uid = peer_uid(self.connection)
            if uid is not None and uid not in (os.geteuid(), 0):
                raise RequestRefused(HTTPStatus.FORBIDDEN, "forbidden", "control.refused.other_user", uid)
            return uid
        if self.headers.get("Origin") is not None:
            raise RequestRefused(HTTPStatus.FORBIDDEN, "forbidden", "control.refused.browser")
        given = self.headers.get("Authorization", "")
        if not (control.token and given.startswith("Bearer ")
                and hmac.compare_digest(given.removeprefix("Bearer ").strip().encode(), control.token.encode())):
            raise RequestRefused(HTTPStatus.UNAUTHORIZED, "unauthorized", "control.refused.token")
        return None

    def _body(self) -> object:
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestRefused(HTTPStatus.LENGTH_REQUIRED, "length_required", "control.refused.length")
        try:
            n = int(length)
        except ValueError:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, "bad_request", "control.refused.length") from None
        if n < 0 or n > MAX_BODY:
            raise RequestRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large", "control.refused.too_large",
                                 MAX_BODY)
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if n and kind != "application/json":
            raise RequestRefused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                                 "control.refused.media_type")
        raw = self.rfile.read(n) if n else b""
        if len(raw) < n:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, "bad_request", "control.refused.short_body")
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise RequestRefused(HTTPStatus.BAD_REQUEST, "bad_json", "control.refused.json") from None

    def _json(self, status: HTTPStatus, payload: object) -> None:
        data = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
        self._send(status, data, "application/json; charset=utf-8")

    def _send(self, status: HTTPStatus, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, route: Route, request: Request) -> None:
        """The route writes JSON lines through ``emit``; the status line goes out with the first, so
        a route that refuses (RequestRefused) before writing still answers with a JSON error."""
        started = False

        def emit(item: dict) -> None:
            nonlocal started
            if not started:
                self.connection.settimeout(None)
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                started = True
            self.wfile.write(json.dumps(item, ensure_ascii=False, default=str).encode("utf-8") + b"\n")
            self.wfile.flush()

        try:
            route(request, emit)
        except RequestRefused as e:
            if started:
                emit({"error": e.code, "message": i18n.t(e.key, *e.args_)})
                raise _Ended from None
            raise
        except (OSError, _Ended):
            raise
        except Exception:  # noqa: BLE001 - a bug half-way through a stream: said on the stream, logged
            if not started:
                raise
            log.exception("control API: %s %s failed", request.method, request.path)
            emit({"error": "internal", "message": i18n.t("control.refused.internal")})
            raise _Ended from None
        if not started:
            emit({"end": True})


class _Ended(Exception):
    """A stream that had begun cannot turn into an error answer: it just ends."""
