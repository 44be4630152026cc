"""What every benchmark shares: the result line, timing helpers, a scratch folder."""

from __future__ import annotations

import json
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    figures: dict
    baseline: dict
    ratio: float | dict
    target: str | dict
    met: bool | dict | None = None
    notes: dict = field(default_factory=dict)

    def line(self, name: str) -> str:
        data = {"bench": name, "figures": self.figures, "baseline": self.baseline,
                "ratio": self.ratio, "target": self.target}
        if self.met is not None:
            data["met"] = self.met
        if self.notes:
            data["notes"] = self.notes
        return json.dumps(data, ensure_ascii=False, sort_keys=False)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """Fastest of ``runs`` timings: the least disturbed by other work on the machine."""
    return min(timed(fn) for _ in range(runs))


def percentile(samples: list[float], p: float) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rnd(x: float, digits: int = 3) -> float:
    return round(x, digits)
