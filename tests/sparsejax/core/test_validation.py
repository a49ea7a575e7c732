"""Tests of the shared validators: each names the argument and rejects exactly the bad values."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from sparsejax.core import validation as v


@given(st.integers(-1000, 1000))
def test_check_int_bounds(n):
    if 0 <= n <= 10:
        assert v.check_int("k", n, minimum=0, maximum=10) == n
    else:
        with pytest.raises(ValueError, match=r"k must be >= 0 and <= 10"):
            v.check_int("k", n, minimum=0, maximum=10)


@pytest.mark.parametrize("bad", [True, 1.5, "3", None])
def test_check_int_types(bad):
    with pytest.raises(TypeError, match="steps must be an int"):
        v.check_int("steps", bad)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_check_number_open_interval(x):
    ok = np.isfinite(x) and 0.0 < x < 1.0
    if ok:
        assert v.check_number("eps", x, minimum=0, maximum=1, min_inclusive=False, max_inclusive=False) == x
    else:
        with pytest.raises(ValueError, match="eps must be"):
            v.check_number("eps", x, minimum=0, maximum=1, min_inclusive=False, max_inclusive=False)


def test_check_number_traced():
    @jax.jit
    def f(x):
        return v.check_number("lr", x, allow_traced=True) * 2

    assert float(f(1.5)) == 3.0
    with pytest.raises(TypeError, match="lr must be a concrete number"):
        jax.jit(lambda x: v.check_number("lr", x))(1.0)


def test_check_array_shape_rank_dtype():
    x = jnp.zeros((3, 4))
    assert v.check_array("x", x, ndim=2, shape=(None, 4), dtype_kind="f") is x
    with pytest.raises(ValueError, match=r"x must have ndim 3, got shape \(3, 4\)"):
        v.check_array("x", x, ndim=3)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 5\)"):
        v.check_array("x", x, shape=(None, 5))
    with pytest.raises(TypeError, match="x must have a signed int dtype"):
        v.check_array("x", x, dtype_kind="i")
    with pytest.raises(TypeError, match="x must be an array"):
        v.check_array("x", [1, 2])


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=20))
def test_check_finite_array(values):
    arr = np.asarray(values, np.float32)
    if np.isfinite(arr).all():
        v.check_finite_array("a", arr)
    else:
        with pytest.raises(ValueError, match="a must be finite"):
            v.check_finite_array("a", arr)


@given(st.lists(st.integers(-5, 12), min_size=1, max_size=20))
def test_check_index_range(values):
    idx = np.asarray(values, np.int32)
    if idx.min() >= 0 and idx.max() < 8:
        v.check_index_range("idx", idx, 8)
    else:
        with pytest.raises(ValueError, match=r"idx must lie in \[0, 8\)"):
            v.check_index_range("idx", idx, 8)


def test_check_same_length_and_choice():
    assert v.check_same_length(x=np.zeros((4, 2)), y=np.zeros(4)) == 4
    with pytest.raises(ValueError, match="x=4, y=3"):
        v.check_same_length(x=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(ValueError, match=r"method must be one of \['a', 'b'\], got 'c'"):
        v.check_choice("method", "c", ["a", "b"])


def test_check_finite_tree_names_leaf():
    tree = {"Dense_0": {"kernel": jnp.ones((2, 2)), "bias": jnp.array([0.0, jnp.inf])}}
    with pytest.raises(ValueError, match="params leaf 'Dense_0/bias' holds NaN or inf"):
        v.check_finite_tree("params", tree)
    v.check_finite_tree("params", {"a": jnp.ones(3), "b": None})


def test_check_array_counts_bfloat16_as_floating():
    v.check_array("x", jnp.zeros(2, jnp.bfloat16), dtype_kind="f")
    with pytest.raises(TypeError, match="x must have a signed int dtype, got bfloat16"):
        v.check_array("x", jnp.zeros(2, jnp.bfloat16), dtype_kind="i")
