"""Long work off the GUI thread: a QRunnable in the global QThreadPool with done/failed/progress signals."""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(object)
    progress = Signal(object, object)  # (done, total): byte counts pass 2**31


class Task(QRunnable):
    """Runs ``fn(progress)`` in a pool thread; ``progress(done, total)`` may be called from there."""

    def __init__(self, fn: Callable[[Callable[[int, int], None]], object]) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn = fn
        self.signals = TaskSignals()

    def run(self) -> None:  # in the pool thread
        try:
            result = self.fn(self.signals.progress.emit)
        except BaseException as e:  # noqa: BLE001 - handed to the GUI thread, which shows and logs it
            self.signals.failed.emit(e)
        else:
            self.signals.done.emit(result)
        finally:
            _forget_foreign_thread()


def _forget_foreign_thread() -> None:
    """Python before 3.13 keeps a ``_DummyThread`` for every thread it did not start (a pool thread
    that logged, say) for ever; drop this one's, so the thread list shows the threads that run."""
    ident = threading.get_ident()
    if isinstance(threading._active.get(ident), threading._DummyThread):  # noqa: SLF001
        with threading._active_limbo_lock:  # noqa: SLF001
            threading._active.pop(ident, None)  # noqa: SLF001


_running: set[Task] = set()


def run_task(fn, on_done: Callable[[object], None], on_failed: Callable[[BaseException], None],
             on_progress: Callable[[int, int], None] | None = None) -> Task:
    """Start ``fn`` in the pool; the callbacks run on the GUI thread."""
    task = Task(fn)
    _running.add(task)

    def finish(callback, value) -> None:
        _running.discard(task)
        callback(value)

    task.signals.done.connect(lambda value: finish(on_done, value))
    task.signals.failed.connect(lambda error: finish(on_failed, error))
    if on_progress is not None:
        task.signals.progress.connect(on_progress)
    QThreadPool.globalInstance().start(task)
    return task


def wait_all(msecs: int = 30000) -> bool:
    """Wait for every task (on quit, and in tests)."""
    return QThreadPool.globalInstance().waitForDone(msecs)
