"""``dqc bench``'s timing: a fast call is sampled until half a second is measured, a slow one
only the requested number of times (after one warm-up call each)."""

import time

from dqc.bench import MAX_CALLS, MIN_TIMED_SECONDS, median_ms


def _counted(seconds: float):
    calls = []

    def call():
        calls.append(None)
        time.sleep(seconds)

    return call, calls


def test_fast_calls_are_sampled_for_the_minimum_time():
    call, calls = _counted(0.001)
    assert median_ms(call, repeats=3) >= 1.0
    timed = len(calls) - 1  # each call sleeps at least 1 ms: at most 500 fit in 0.5 s
    assert 3 < timed <= MIN_TIMED_SECONDS / 0.001 + 1


def test_slow_calls_are_sampled_the_requested_number_of_times():
    call, calls = _counted(MIN_TIMED_SECONDS / 2)
    median_ms(call, repeats=3)
    assert len(calls) == 1 + 3


def test_instant_calls_stop_at_the_cap():
    calls = []
    median_ms(lambda: calls.append(None), repeats=1)
    assert len(calls) == 1 + MAX_CALLS
