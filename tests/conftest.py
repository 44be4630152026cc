"""Shared test fixtures.

Autouse guards (after python-zeroconf's and magic-wormhole's): a test fails if it leaves a thread
running, leaves a child process running (it is killed), or logs an error nobody looked at. A test
that expects error logs takes ``observed_errors`` and asserts on them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports PySide6

import pytest  # noqa: E402


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _no_unobserved_error_logs(request):
    collector = _ErrorCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    request.node._error_collector = collector
    try:
        yield
    finally:
        root.removeHandler(collector)
    if collector.records and not getattr(request.node, "_errors_observed", False):
        lines = "\n".join(f"{r.name}: {r.getMessage()}" for r in collector.records[:5])
        pytest.fail(f"test logged {len(collector.records)} unexpected error(s):\n{lines}")


@pytest.fixture
def observed_errors(request) -> list[logging.LogRecord]:
    """The error log records of this test; taking the fixture says the test checks them."""
    request.node._errors_observed = True
    return request.node._error_collector.records


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    before = set(threading.enumerate())
    yield
    deadline = 50
    leaked: list[threading.Thread] = []
    for _ in range(deadline):
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        threading.Event().wait(0.1)
    pytest.fail(f"test leaked thread(s): {', '.join(t.name for t in leaked)}")


def _descendants(pid: int) -> set[int]:
    """Every live (not zombie) process below ``pid``, from /proc (Linux)."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            for kid in kids:
                try:
                    with open(f"/proc/{kid}/stat") as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                except (OSError, IndexError):
                    continue
                if state != "Z" and kid not in found:
                    found.add(kid)
                    todo.append(kid)
    return found


@pytest.fixture(autouse=True)
def _no_leaked_processes():
    if not os.path.isdir("/proc/self/task"):
        yield
        return
    before = _descendants(os.getpid())  # brokers of module- or session-wide fixtures are older
    yield
    leaked: set[int] = set()
    for _ in range(30):
        leaked = _descendants(os.getpid()) - before
        if not leaked:
            return
        threading.Event().wait(0.1)
    names = []
    for pid in sorted(leaked):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")[:80]
            names.append(f"{pid} {command}")
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    pytest.fail(f"test left child process(es) running (killed now): {'; '.join(names)}")


@pytest.fixture
def english():
    """Messages in English for this test (the product's default language is zh_CN)."""
    from appliance import i18n

    i18n.set_lang("en")
    yield
    i18n.set_lang(None)


def pytest_collection_modifyitems(items):
    """Tests under tests/fuzz carry the ``fuzz`` mark (``pytest -m fuzz`` runs just them)."""
    for item in items:
        if "/tests/fuzz/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.fuzz)
