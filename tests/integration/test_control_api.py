"""The running node's control API, served by a real NodeHost over its real Unix socket and a
loopback TCP port: what it answers, what it refuses, and that a refused request changes nothing."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import threading
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.errors import ControlRefused
from appliance.host import ControlClient, NodeHost
from appliance.host.client import _UnixConnection
from appliance.settings import Settings
from edge.cli import command_runner

ROOT = Path(__file__).resolve().parents[2]
DOC = json.loads((ROOT / "docs" / "control-api.json").read_text(encoding="utf-8"))


def _schema(ref: dict) -> dict:
    """A response schema of the description, with its components so that $ref resolves."""
    return {**ref, "components": DOC["components"]}


@pytest.fixture
def host(node, data):
    h = NodeHost(node, runner=command_runner(node, Settings(home=node.home, lang="en")), tcp_port=0)
    h.start()
    yield h
    h.stop()


def _unix(host, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = _UnixConnection(host.control.socket_file, 10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type", ""), r.read()
    finally:
        conn.close()


def _tcp(host, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", host.control.tcp_port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type", ""), r.read()
    finally:
        conn.close()


def test_the_socket_is_owner_only_and_the_token_file_too(host):
    mode = host.control.socket_file.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE((host.home / "control.token").stat().st_mode) == 0o600


def test_health_status_and_spaces_answer_as_the_description_says(host):
    for path, schema in (("/healthz", "Health"), ("/v1/status", "Status"), ("/v1/spaces", None)):
        status, kind, body = _unix(host, "GET", path)
        assert status == 200 and kind.startswith("application/json")
        doc = DOC["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.validate(json.loads(body), _schema(doc))
        if schema == "Health":
            assert json.loads(body)["did"] == host.node.identity.did


def test_every_route_is_described_and_every_description_is_served(host):
    served = {(method.lower(), path) for method, path in host.control.endpoints}
    described = {(m, p) for p, ops in DOC["paths"].items() for m in ops}
    assert served == described


def test_a_cli_command_runs_in_the_node_and_its_output_and_exit_code_come_back(host, data):
    (data / "readings.csv").write_text("machine,temp\nA,20\nB,21\n", encoding="utf-8")
    client = ControlClient(host.home, lang="en")
    out: list[tuple[str, str]] = []
    code = client.run_cli(["resource", "add", "readings.csv", "--title", "Readings"], str(data), "en",
                          lambda s, t: out.append((s, t)))
    assert code == 0, out
    assert host.node.resources.list()[0].title == "Readings"  # the relative path was the caller's
    missing: list[tuple[str, str]] = []
    code = client.run_cli(["product", "show", "no-such-product"], str(data), "zh_CN",
                          lambda s, t: missing.append((s, t)))
    assert code == 72
    text = "".join(t for s, t in missing if s == "err")
    assert "no-such-product" in text and "数据产品" in text  # the caller's language, not the daemon's


def test_two_users_languages_are_served_at_once(host):
    client = ControlClient(host.home)
    results: dict[str, str] = {}

    def run(lang: str) -> None:
        out: list[str] = []
        client.run_cli(["resource", "list"], "/", lang, lambda s, t: out.append(t))
        results[lang] = "".join(out)

    threads = [threading.Thread(target=run, args=(lang,)) for lang in ("en", "zh_CN") * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert "No data resources" in results["en"] and "No data resources" not in results["zh_CN"]


def test_the_tcp_listener_needs_the_token_and_refuses_browsers(host):
    token = (host.home / "control.token").read_text().strip()
    assert _tcp(host, "GET", "/healthz")[0] == 401
    assert _tcp(host, "GET", "/healthz", headers={"Authorization": "Bearer wrong"})[0] == 401
    ok = {"Authorization": f"Bearer {token}"}
    assert _tcp(host, "GET", "/healthz", headers=ok)[0] == 200
    status, _, body = _tcp(host, "GET", "/healthz", headers={**ok, "Origin": "http://evil.example"})
    assert status == 403 and json.loads(body)["error"] == "forbidden"


@pytest.mark.parametrize(("method", "path", "body", "headers", "expected"), [
    ("GET", "/v1/nothing", None, {}, 404),
    ("DELETE", "/v1/cli", None, {}, 405),
    ("POST", "/v1/cli", b"{", {"Content-Type": "application/json"}, 400),
    ("POST", "/v1/cli", b'{"argv": ["status"]}', {"Content-Type": "text/plain"}, 415),
    ("POST", "/v1/cli", b'{"argv": ["status"], "cwd": "relative"}', {"Content-Type": "application/json"}, 400),
    ("POST", "/v1/cli", b'{"argv": [], "cwd": "/"}', {"Content-Type": "application/json"}, 400),
    ("POST", "/v1/cli", b'{"argv": ["status"], "cwd": "/", "sudo": 1}', {"Content-Type": "application/json"}, 400),
    ("POST", "/v1/cli", b'{"argv": ["status"], "cwd": "/", "lang": "fr"}', {"Content-Type": "application/json"}, 400),
    ("POST", "/v1/cli", b"x", {"Content-Type": "application/json", "Content-Length": str(1 << 21)}, 413),
])
def test_a_bad_request_is_refused_with_a_reason_and_changes_nothing(host, method, path, body, headers, expected):
    before = host.node.evidence.size()
    status, kind, raw = _unix(host, method, path, body, {**headers, "Accept-Language": "zh_CN"})
    assert status == expected and kind.startswith("application/json")
    reply = json.loads(raw)
    jsonschema.validate(reply, _schema({"$ref": "#/components/schemas/Error"}))
    assert any("\u4e00" <= c <= "\u9fff" for c in reply["message"]), reply  # said in the asker's Chinese
    assert host.node.evidence.size() == before


def test_a_request_without_a_length_is_refused(host):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(host.control.socket_file))
        s.sendall(b"POST /v1/cli HTTP/1.0\r\nContent-Type: application/json\r\n\r\n{}")
        s.shutdown(socket.SHUT_WR)
        reply = s.recv(65536)
    assert reply.startswith(b"HTTP/1.0 411")


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)


@settings(max_examples=int(os.environ.get("DSNODE_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(_json, st.fixed_dictionaries({"argv": _json, "cwd": _json}, optional={"lang": _json})),
       raw=st.none() | st.binary(max_size=64))
@pytest.mark.fuzz
def test_fuzzed_bodies_never_crash_the_api_nor_run_a_command_they_should_not(host, body, raw):
    ran: list[list[str]] = []
    real = host.runner

    def counting(argv, cwd, lang, write):
        ran.append(argv)
        return real(["identity", "show"], "/", lang, write)  # whatever argv came, run a harmless read

    host.runner = counting
    try:
        data = raw if raw is not None else json.dumps(body).encode()
        status, kind, reply = _unix(host, "POST", "/v1/cli", data, {"Content-Type": "application/json"})
    finally:
        host.runner = real
    assert status in (200, 400), reply[:200]
    valid = (isinstance(body, dict) and raw is None and isinstance(body.get("argv"), list) and body["argv"]
             and all(isinstance(a, str) for a in body["argv"]) and isinstance(body.get("cwd"), str)
             and body["cwd"].startswith("/") and "\x00" not in body["cwd"]
             and not any("\x00" in a for a in body["argv"]) and body.get("lang") in (None, "en", "zh_CN")
             and set(body) <= {"argv", "cwd", "lang"})
    assert (status == 200) == bool(valid) and bool(ran) == bool(valid)


def test_the_event_stream_tells_what_happens(host, data):
    (data / "a.csv").write_text("k,v\n1,2\n", encoding="utf-8")
    client = ControlClient(host.home)
    events = client.events()
    assert next(events)["event"] == "hello"
    host.node.resources.register(data / "a.csv", title="A")
    seen = next(e for e in events if e.get("event") != "heartbeat")
    events.close()
    assert seen["event"] == "ResourceRegistered"


def test_metrics_are_in_prometheus_format(host):
    status, kind, body = _unix(host, "GET", "/metrics")
    text = body.decode()
    assert status == 200 and kind.startswith("text/plain")
    assert "dsnode_up 1.0" in text and "dsnode_evidence_entries" in text
    assert "# TYPE dsnode_transfers gauge" in text and 'dsnode_transfer_bytes{role="consumer"} 0.0' in text


def test_a_refused_request_is_an_error_the_client_names(host):
    with pytest.raises(ControlRefused):
        ControlClient(host.home).get("/v1/nothing")


def test_counters_are_kept_and_go_on_after_a_restart(tmp_path):
    from appliance.node import Node
    from appliance.storage import KdfParams

    node = Node.init(tmp_path / "n", b"pass phrase 12", name="n", kdf=KdfParams.fast())
    node.sync.counters.add_dropped("s1", "bad_signature")
    node.sync.counters.add_sent("s1", 3)
    node.close()
    node = Node.open(tmp_path / "n", b"pass phrase 12")
    try:
        assert node.sync.counters.snapshot("s1") == (3, 0, {"bad_signature": 1})
    finally:
        node.close()


def test_a_stopped_host_leaves_no_socket_and_the_client_sees_no_node(node):
    h = NodeHost(node)
    h.start()
    client = ControlClient(node.home)
    assert client.running()
    h.stop()
    assert not h.control.socket_file.exists() and not client.running()


def test_a_socket_left_by_a_killed_node_is_not_taken_for_a_running_node(node):
    path = NodeHost(node).control.socket_file
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # bound, never listening: what a SIGKILLed node leaves
    assert path.exists() and not ControlClient(node.home).running()
    h = NodeHost(node)
    h.start()  # and the next node takes the place
    try:
        assert ControlClient(node.home).running()
    finally:
        h.stop()


def test_the_operator_is_told_when_a_join_request_waits(reviewed_space):
    op = reviewed_space.operator
    h = NodeHost(op, notices_every=0.1)
    seen = []
    op.bus.subscribe(lambda e: seen.append(e) if type(e).__name__ == "RequestsWaiting" else None)
    h.start()
    try:
        member = reviewed_space.new_node("m1")
        reviewed_space.join(member, wait=False)
        from tests.spaces import wait_for

        wait_for(lambda: seen, 20, "a notice of the waiting join request")
        assert seen[0].admissions == 1 and seen[0].new_admissions
    finally:
        h.stop()


def test_the_running_node_signs_a_checkpoint_when_the_log_grew_and_not_otherwise(node):
    h = NodeHost(node, counters_every=0.05, checkpoint_every=0.1)
    h.start()
    try:
        node.evidence.record("test.step", "urn:test:1")
        from tests.spaces import wait_for

        def signed() -> bool:
            latest = node.evidence.latest_checkpoint()
            return latest is not None and latest.size == node.evidence.size()

        wait_for(signed, 10, "a checkpoint")
        assert h.checkpoint() is False, "nothing new: no new checkpoint"
    finally:
        h.stop()
