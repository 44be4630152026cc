"""Talking to a running node's control API over its Unix socket (what the CLI and scripts use)."""

from __future__ import annotations

import errno
import http.client
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from appliance.errors import ControlRefused, ControlUnavailable, LocalText
from appliance.host import paths

CONNECT_TIMEOUT = 3.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_file: Path, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_file = socket_file

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(str(self.socket_file))
        except BaseException:
            sock.close()
            raise
        sock.settimeout(self.timeout)
        self.sock = sock


class ControlClient:
    """The control API of the node whose home is ``home``, if one runs there."""

    def __init__(self, home: Path, *, lang: str | None = None) -> None:
        self.home = Path(home)
        self.socket_file = paths.socket_path(self.home)
        self.lang = lang

    def running(self) -> bool:
        """Whether a node answers on the socket (a socket left by a killed node does not)."""
        if not self.socket_file.exists():
            return False
        try:
            conn = _UnixConnection(self.socket_file, CONNECT_TIMEOUT)
            conn.connect()
            conn.close()
            return True
        except OSError as e:
            if e.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
                return False
            raise ControlUnavailable(self.home, type(e).__name__) from None

    def pid(self) -> str:
        try:
            return (self.home / paths.PID_NAME).read_text(encoding="ascii").strip() or "?"
        except OSError:
            return "?"

    # --- requests -----------------------------------------------------------------------------

    def get(self, path: str, *, timeout: float = 30.0) -> object:
        conn, response = self._request("GET", path, None, timeout)
        try:
            return self._json(response)
        finally:
            conn.close()

    def run_cli(self, argv: list[str], cwd: str, lang: str | None, write: Callable[[str, str], None]) -> int:
        """Run a `dsnode` command line in the running node; ``write(stream, text)`` gets its output
        (stream ``out`` or ``err``) as it comes. Returns the command's exit code."""
        conn, response = self._request("POST", "/v1/cli", {"argv": argv, "cwd": cwd, "lang": lang}, None)
        try:
            for line in self._lines(response):
                if "exit" in line:
                    return int(line["exit"])
                if "error" in line:
                    raise ControlRefused(str(line.get("message") or line["error"]))
                for stream in ("out", "err"):
                    if stream in line:
                        write(stream, str(line[stream]))
            raise ControlUnavailable(self.home, LocalText("control.reason.ended_early"))
        finally:
            conn.close()

    def events(self, types: tuple[str, ...] = ()) -> Iterator[dict]:
        query = "&".join(f"type={t}" for t in types)
        conn, response = self._request("GET", "/v1/events" + (f"?{query}" if query else ""), None, None)
        try:
            yield from self._lines(response)
        finally:
            conn.close()

    def _request(self, method: str, path: str, body: object, timeout: float | None):
        conn = _UnixConnection(self.socket_file, timeout)
        headers = {"Accept-Language": self.lang} if self.lang else {}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise ControlUnavailable(self.home, type(e).__name__) from None
        if response.status >= 400:
            try:
                answer = self._json(response)
                raise ControlRefused((answer.get("message") if isinstance(answer, dict) else None) or response.reason)
            finally:
                conn.close()
        return conn, response

    def _json(self, response) -> object:
        try:
            return json.loads(response.read().decode("utf-8"))
        except (OSError, http.client.HTTPException, UnicodeDecodeError, ValueError) as e:
            raise ControlUnavailable(self.home, type(e).__name__) from None

    def _lines(self, response) -> Iterator[dict]:
        try:
            for raw in response:
                line = json.loads(raw.decode("utf-8"))
                if isinstance(line, dict):
                    yield line
        except (OSError, http.client.HTTPException, UnicodeDecodeError, ValueError) as e:
            raise ControlUnavailable(self.home, type(e).__name__) from None
