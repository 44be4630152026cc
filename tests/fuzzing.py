"""Settings shared by the fuzz tests (``tests/fuzz``).

Every fuzz test is seeded (``derandomize``): CI runs the same inputs each time, and a failure
found once is found again. ``DSNODE_FUZZ_EXAMPLES`` sets how many inputs each test tries
(default 2,000 in the suite); a longer hunt: ``DSNODE_FUZZ_EXAMPLES=200000 pytest -m fuzz``.
``DSNODE_FUZZ_RANDOM=1`` draws fresh inputs each run instead (a hunt for new failures; a failure
prints the ``@reproduce_failure`` line that replays it).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("DSNODE_FUZZ_EXAMPLES", "2000"))
RANDOM = os.environ.get("DSNODE_FUZZ_RANDOM", "") not in ("", "0")

fuzz = settings(
    max_examples=EXAMPLES,
    derandomize=not RANDOM,
    print_blob=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
"""Decorate a ``@given`` test with this (``@fuzz``) instead of writing its own settings."""


def scaled(n: int) -> settings:
    """``fuzz`` with ``n`` / 2,000 of its examples: for a parser whose inputs are slow to run."""
    return settings(fuzz, max_examples=max(10, EXAMPLES * n // 2000))
