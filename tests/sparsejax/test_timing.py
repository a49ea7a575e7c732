"""time_per_call: warm-up excluded, median of the timed repeats, bad repeats rejected."""
import time

import pytest

from sparsejax.timing import time_per_call


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
