"""``dqc bench``'s timing: the columns take turns, a round at a time, for at least the
requested rounds and until half a second per column is measured (after a warm-up round)."""

import itertools
import time

from dqc.bench import MAX_CALLS, MIN_TIMED_SECONDS, interleaved_ms


def _counted(seconds: float):
    calls = []

    def call():
        calls.append(time.perf_counter())
        time.sleep(seconds)

    return call, calls


def test_columns_take_turns_and_fast_ones_are_sampled_for_the_minimum_time():
    fast, fast_calls = _counted(0.001)
    slow, slow_calls = _counted(0.002)
    times = interleaved_ms({"fast": fast, "slow": slow}, repeats=3)
    assert times["fast"] >= 1.0 and times["slow"] >= 2.0
    assert len(fast_calls) == len(slow_calls) > 1 + 3  # more rounds than asked for
    # each round calls both once: the calls alternate
    merged = sorted([(t, "fast") for t in fast_calls] + [(t, "slow") for t in slow_calls])
    assert all(a[1] != b[1] for a, b in itertools.pairwise(merged))
    # rounds stop once 0.5 s per column is spent: each round takes at least 3 ms
    assert len(fast_calls) <= 1 + 2 * MIN_TIMED_SECONDS / 0.003 + 1


def test_slow_columns_are_sampled_the_requested_number_of_times():
    slow, calls = _counted(MIN_TIMED_SECONDS)
    interleaved_ms({"slow": slow}, repeats=2)
    assert len(calls) == 1 + 2


def test_instant_columns_stop_at_the_cap():
    calls = []
    interleaved_ms({"instant": lambda: calls.append(None)}, repeats=1)
    assert len(calls) == 1 + MAX_CALLS


def test_no_columns():
    assert interleaved_ms({}, repeats=5) == {}
