"""time_per_call and cpu_and_wall_per_call: warm-up excluded, median of the timed repeats, CPU time counts work, bad repeats rejected."""
import time

import pytest

from sparsejax.timing import cpu_and_wall_per_call, time_per_call


def test_time_per_call_excludes_warmup_and_takes_median():
    calls = []

    def fn():
        calls.append(None)
        time.sleep(0.2 if len(calls) == 1 else 0.01)  # slow first (compile-like) call
        return 0

    t = time_per_call(fn, repeats=3)
    assert len(calls) == 4 and 0.005 < t < 0.1
    with pytest.raises(ValueError, match="repeats"):
        time_per_call(fn, repeats=0)


def test_cpu_time_counts_work_not_waiting():
    def sleep():
        time.sleep(0.05)

    def spin():  # 0.05 s of CPU work, however long the scheduler makes it take
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass

    cpu_sleep, wall_sleep = cpu_and_wall_per_call(sleep, repeats=2)
    cpu_spin, wall_spin = cpu_and_wall_per_call(spin, repeats=2)
    assert wall_sleep >= 0.05 and cpu_sleep < 0.02
    assert wall_spin >= 0.05 and cpu_spin >= 0.05
