"""The rate and time left that every progress event carries (appliance/services/delivery/rate.py),
on a clock the test moves."""

from __future__ import annotations

import pytest

from appliance.services.delivery.rate import ProgressMeter, RateEstimator

MB = 1_000_000
STEP = 1_250_000  # bytes in 1/8 s at 10 MB/s


class Clock:
    def __init__(self) -> None:
        self.t = 0.0  # steps of 1/8 s add up exactly

    def __call__(self) -> float:
        return self.t


def feed(estimator: RateEstimator, clock: Clock, *, start: int, step: int, every: float, count: int, total: int):
    done, seen = start, None
    for _ in range(count):
        clock.t += every
        done += step
        seen = estimator.update(done, total)
    return done, seen


def test_a_steady_transfer_shows_its_rate_and_the_time_left():
    clock = Clock()
    estimator = RateEstimator(clock)
    assert estimator.update(0, 100 * MB) == (0.0, None), "nothing is known from one event"
    done, (rate, eta) = feed(estimator, clock, start=0, step=STEP, every=0.125, count=50, total=100 * MB)  # 10 MB/s
    assert rate == pytest.approx(10 * MB)
    assert eta == pytest.approx((100 * MB - done) / (10 * MB))


def test_the_rate_is_unknown_for_the_first_half_second():
    clock = Clock()
    estimator = RateEstimator(clock)
    estimator.update(0, 10 * MB)
    _, (rate, eta) = feed(estimator, clock, start=0, step=STEP, every=0.125, count=3, total=10 * MB)
    assert (rate, eta) == (0.0, None)
    _, (rate, eta) = feed(estimator, clock, start=3 * STEP, step=STEP, every=0.125, count=1, total=10 * MB)
    assert rate == pytest.approx(10 * MB) and eta == pytest.approx(0.5)


def test_a_burst_moves_the_rate_a_little_and_a_lasting_change_moves_it_all_the_way():
    clock = Clock()
    estimator = RateEstimator(clock)
    estimator.update(0, 10_000 * MB)
    done, (steady, _) = feed(estimator, clock, start=0, step=STEP, every=0.125, count=100, total=10_000 * MB)
    clock.t += 0.125
    done += 20 * STEP  # one event with twenty times the usual bytes
    burst, _ = estimator.update(done, 10_000 * MB)
    assert steady < burst < 2 * steady, "one burst does not set the rate"
    done, (slow, _) = feed(estimator, clock, start=done, step=STEP // 10, every=0.125, count=240, total=10_000 * MB)
    assert slow == pytest.approx(MB, rel=0.01), "after ten time constants at 1 MB/s the rate is 1 MB/s"


def test_the_smoothing_does_not_depend_on_how_often_events_come():
    fine, coarse = Clock(), Clock()
    a, b = RateEstimator(fine), RateEstimator(coarse)
    a.update(0, 10_000 * MB)
    b.update(0, 10_000 * MB)
    da, _ = feed(a, fine, start=0, step=STEP, every=0.125, count=80, total=10_000 * MB)
    db, _ = feed(b, coarse, start=0, step=8 * STEP, every=1.0, count=10, total=10_000 * MB)
    ra, _ = feed(a, fine, start=da, step=2 * STEP, every=0.125, count=24, total=10_000 * MB)[1]
    rb, _ = feed(b, coarse, start=db, step=16 * STEP, every=1.0, count=3, total=10_000 * MB)[1]
    assert ra == pytest.approx(rb, rel=0.03)
    assert 10 * MB < ra < 20 * MB


def test_done_has_no_time_left_and_a_restarted_count_starts_over():
    clock = Clock()
    estimator = RateEstimator(clock)
    estimator.update(0, 10 * MB)
    feed(estimator, clock, start=0, step=STEP, every=0.125, count=7, total=10 * MB)
    assert estimator.update(10 * MB, 10 * MB)[1] == 0.0
    assert estimator.update(MB, 10 * MB) == (0.0, None), "fewer bytes than before: a new start"


def test_the_meter_keeps_one_estimate_per_transfer_and_forgets_finished_ones():
    clock = Clock()
    meter = ProgressMeter(clock)
    for i in range(11):
        a = meter.event("a", i, 10, i * MB, 10 * MB)  # 10 MB/s
        b = meter.event("b", i, 100, i * MB // 10, 100 * MB)  # 1 MB/s
        clock.t += 0.1
    assert a.rate == pytest.approx(10 * MB) and a.eta == 0.0
    assert b.rate == pytest.approx(MB) and b.eta == pytest.approx(99)
    assert (a.transfer_id, a.chunks_done, a.chunks_total, a.bytes_done, a.bytes_total) == ("a", 10, 10, 10 * MB,
                                                                                          10 * MB)
    assert meter.event("a", 1, 10, MB, 10 * MB).rate == 0.0, "a finished transfer's estimate is gone"


def test_the_cli_bar_shows_the_rate_and_time_left_of_the_event():
    import io

    from appliance.services.delivery.records import TransferProgress
    from edge.cmd_transfer import _Bar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    bar = _Bar(out)
    bar.show(TransferProgress("t", 1, 4, 25 * MB, 100 * MB))
    assert out.getvalue().endswith("25%       - MB/s     - s "), "unknown at first"
    bar.show(TransferProgress("t", 2, 4, 50 * MB, 100 * MB, 12.5 * MB, 4.2))
    assert out.getvalue().endswith(" 50%    12.5 MB/s     4 s ")


def test_a_transfer_resumed_after_a_long_pause_starts_a_new_estimate():
    clock = Clock()
    meter = ProgressMeter(clock)
    for i in range(20):
        fast = meter.event("a", i, 1000, i * STEP, 1000 * STEP)  # 10 MB/s
        clock.t += 0.125
    assert fast.rate == pytest.approx(10 * MB)
    clock.t += 600  # paused ten minutes
    assert meter.event("a", 21, 1000, 21 * STEP, 1000 * STEP).rate == 0.0, "unknown again, not the pause averaged in"
    for i in range(22, 30):
        clock.t += 0.125
        again = meter.event("a", i, 1000, i * STEP, 1000 * STEP)
    assert again.rate == pytest.approx(10 * MB)
