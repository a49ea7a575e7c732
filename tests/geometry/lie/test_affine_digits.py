"""End-to-end run of the affine_digits experiment with tiny settings (P19), and its fair CNN baseline."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.runner import run_experiment


@pytest.mark.slow  # heavy end-to-end run; the default suite keeps CI under 15 min
def test_affine_digits_end_to_end(tmp_path):
    import experiments.affine_digits as module
    from sparsejax.data import load_digits

    res = run_experiment(
        "affine_digits", "smoke", out=tmp_path, quiet=True,
        overrides=["epochs=1", "batch_size=256", "num_samples=4", "channels=[4,4]", "kernel_hidden=8",
                   "models=[\"gl2\",\"cnn\"]", "magnitudes=[0.0,1.0]", "seeds=[0,1]"],
    )
    metrics = res["metrics"]
    assert set(metrics["models"]) == {"gl2", "cnn"}
    assert metrics["models"]["gl2"]["resampled"] and not metrics["models"]["cnn"]["resampled"]
    assert len(metrics["per_seed"]) == 4 and {r["seed"] for r in metrics["per_seed"]} == {0, 1}
    # the CNN is parameter-matched to the equivariant model (within 25%)
    p = {k: v["params"] for k, v in metrics["models"].items()}
    assert abs(p["cnn"] - p["gl2"]) / p["gl2"] < 0.25
    split = load_digits(test_size=0.25, seed=0)
    majority = np.bincount(split.y_train).argmax()
    assert metrics["trivial"]["accuracy"] == pytest.approx(float(np.mean(split.y_test == majority)))
    text = module.summarize(res)
    assert "majority class" in text and "±" in text and "|" not in text
    assert (tmp_path / "accuracy_vs_magnitude.png").exists()
    assert json.loads((tmp_path / "results.json").read_text())["experiment"] == "affine_digits"


@pytest.mark.slow
def test_global_pool_cnn_is_far_less_translation_sensitive_than_a_flatten_head():
    """The fair baseline pools globally; the old baseline (``sparsejax.nn.CNN``) ends in flatten +
    Dense. Shifting a digit by 8 pixels (the total stride) inside the canvas changes the pooled
    CNN's logits far less (not exactly zero: SAME zero padding at the small deep maps)."""
    from experiments.affine_digits import GlobalPoolCNN
    from sparsejax.nn import CNN

    x = jnp.zeros((1, 32, 32, 1)).at[0, 8:16, 8:16, 0].set(jax.random.uniform(jax.random.PRNGKey(0), (8, 8)))
    shifted = jnp.roll(x, 8, axis=2)

    def change(model):
        params = model.init(jax.random.PRNGKey(1), x)
        a, b = model.apply(params, x), model.apply(params, shifted)
        return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(a))

    pooled, flat = change(GlobalPoolCNN(10, (8, 8, 8))), change(CNN(10, width=0.5))
    assert pooled < 0.5 * flat, (pooled, flat)
