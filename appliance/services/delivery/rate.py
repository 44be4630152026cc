"""How fast a transfer moves and how long it has left: the rate and ETA every TransferProgress carries,
so the CLI's bar and the desktop app's bars show the same figures and compute none of their own.

The rate is an exponential moving average of bytes per second with a time constant of ``window``
seconds (the weight of a sample decays by e every ``window`` seconds, whatever the spacing of the
events). During the first window it is the plain average since the first event, so one early burst
does not set it. Before ``warmup`` seconds have passed since the first event it is unknown (0.0).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from appliance.services.delivery.records import TransferProgress

WINDOW = 3.0  # seconds: the time constant of the moving average
WARMUP = 0.5  # seconds of events before a rate is shown
STALE = 60.0  # seconds without an event after which a transfer's estimate is forgotten (paused, ended)


class RateEstimator:
    """Bytes per second and seconds left for one transfer, fed with (bytes done, bytes total)."""

    def __init__(self, now: Callable[[], float] = time.monotonic, *, window: float = WINDOW,
                 warmup: float = WARMUP) -> None:
        self._now, self._window, self._warmup = now, window, warmup
        self._first: tuple[float, int] | None = None
        self._last: tuple[float, int] = (0.0, 0)
        self._rate = 0.0

    def update(self, done: int, total: int) -> tuple[float, float | None]:
        """The smoothed rate (bytes/s, 0.0 while unknown) and the ETA (seconds, None while unknown)."""
        now = self._now()
        if self._first is None or done < self._last[1]:  # the first event, or the count started over
            self._first = self._last = (now, done)
            self._rate = 0.0
            return self._rate, self._eta(done, total)
        dt = now - self._last[0]
        if dt > 0:
            since = now - self._first[0]
            if since < self._window:  # not a full window yet: the plain average so far
                self._rate = (done - self._first[1]) / since
            else:
                alpha = 1.0 - math.exp(-dt / self._window)
                self._rate += alpha * ((done - self._last[1]) / dt - self._rate)
            self._last = (now, done)
        return self.rate, self._eta(done, total)

    @property
    def heard(self) -> float:
        """When the last event came."""
        return self._last[0]

    @property
    def rate(self) -> float:
        shown = self._first is not None and self._last[0] - self._first[0] >= self._warmup
        return self._rate if shown else 0.0

    def _eta(self, done: int, total: int) -> float | None:
        if total > 0 and done >= total:
            return 0.0
        rate = self.rate
        return (total - done) / rate if rate > 0 and total > 0 else None


class ProgressMeter:
    """One estimator per moving transfer (the fetch threads report at once); makes the events. An
    estimate not fed for ``STALE`` seconds is dropped: a transfer resumed after a pause starts a new
    one rather than averaging the pause in, and one that ended midway is not kept."""

    def __init__(self, now: Callable[[], float] = time.monotonic, *, window: float = WINDOW) -> None:
        self._now, self._window = now, window
        self._lock = threading.Lock()
        self._estimators: dict[str, RateEstimator] = {}

    def event(self, transfer_id: str, chunks_done: int, chunks_total: int, bytes_done: int,
              bytes_total: int) -> TransferProgress:
        with self._lock:
            now = self._now()
            for tid in [k for k, e in self._estimators.items() if now - e.heard > STALE]:
                del self._estimators[tid]
            estimator = self._estimators.get(transfer_id)
            if estimator is None:
                estimator = self._estimators[transfer_id] = RateEstimator(self._now, window=self._window)
            rate, eta = estimator.update(bytes_done, bytes_total)
            if chunks_total and chunks_done >= chunks_total:  # finished: forget it
                del self._estimators[transfer_id]
        return TransferProgress(transfer_id, chunks_done, chunks_total, bytes_done, bytes_total, rate, eta)
