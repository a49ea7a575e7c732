import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative.diffusion import (
    FACTOR_NAMES,
    SQUARENESS_THRESHOLD,
    estimate_factors,
    factor_ranges,
    make_shapes_dataset,
    render_shapes,
    sample_factors,
)


@pytest.fixture(scope="module")
def data():
    return make_shapes_dataset(jax.random.PRNGKey(0), 400, 16, size_brightness_corr=0.6)


def test_factors_in_range_and_correlated(data):
    f = np.asarray(data.factors)
    ranges = factor_ranges(16)
    for i, name in enumerate(FACTOR_NAMES[:4]):
        assert ranges[name][0] <= f[:, i].min() and f[:, i].max() <= ranges[name][1]
    assert set(np.unique(f[:, 4])) == {0.0, 1.0}
    assert 0.45 < np.corrcoef(f[:, 0], f[:, 3])[0, 1] < 0.75
    indep = np.asarray(sample_factors(jax.random.PRNGKey(1), 400, 16))
    assert abs(np.corrcoef(indep[:, 0], indep[:, 3])[0, 1]) < 0.15


def test_render_area_and_range(data):
    img = np.asarray(data.images)
    assert img.shape == (400, 16, 16, 1) and img.min() >= -1 and img.max() <= 1
    # exact area for squares: covered pixels sum to side^2
    sq = np.asarray(render_shapes(jnp.array([[6.0, 7.3, 8.1, 1.0, 1.0]]), 16))
    np.testing.assert_allclose(((sq + 1) / 2).sum(), 36.0, rtol=1e-5)
    disk = np.asarray(render_shapes(jnp.array([[6.0, 7.3, 8.1, 1.0, 0.0]]), 16))
    np.testing.assert_allclose(((disk + 1) / 2).sum(), 36.0, rtol=0.03)


def test_estimators_recover_factors(data):
    est = np.asarray(estimate_factors(data.images))
    f = np.asarray(data.factors)
    np.testing.assert_allclose(est[:, 0], f[:, 0], atol=0.35)  # size (pixels)
    np.testing.assert_allclose(est[:, 1:3], f[:, 1:3], atol=0.2)  # centre (pixels)
    np.testing.assert_allclose(est[:, 3], f[:, 3], atol=0.08)  # brightness
    assert np.all((est[:, 4] > SQUARENESS_THRESHOLD) == (f[:, 4] == 1.0))


def test_shape_errors():
    with pytest.raises(ValueError):
        render_shapes(jnp.zeros((2, 4)))
    with pytest.raises(ValueError):
        estimate_factors(jnp.zeros((2, 16, 16)))
    with pytest.raises(ValueError):
        sample_factors(jax.random.PRNGKey(0), 4, 16, size_brightness_corr=1.0)
