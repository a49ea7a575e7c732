"""Zoo: trained once into the cache (message + deterministic), loaded identically afterwards,
configs change the cache entry, MAE encoder transfers into ViT."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.nn import ViT
from sparsejax.train import zoo

TINY = {"steps": 4, "track_every": 2, "batch_size": 16, "model_kwargs": {"channels": [4], "hidden": 8}}


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_trains_once_then_loads_same_weights(tmp_path):
    messages = []
    first = zoo.pretrained("cnn_digits", overrides=TINY, cache_dir=tmp_path, progress=False, log=messages.append)
    assert len(messages) == 1 and "training it once" in messages[0] and str(tmp_path) in messages[0]
    assert (first.path / "info.json").exists()
    assert first.info["history"]["step"] == [0, 2, 4]
    assert 0.0 <= first.info["metrics"]["test_accuracy"] <= 1.0
    again = zoo.pretrained("cnn_digits", overrides=TINY, cache_dir=tmp_path, progress=False, log=messages.append)
    assert len(messages) == 1  # loaded, not retrained
    for a, b in zip(_leaves(first.params), _leaves(again.params)):
        np.testing.assert_array_equal(a, b)
    from sparsejax.train.checkpoint import use_fingerprint

    with use_fingerprint({"code": {"commit": "another run"}}):  # an experiment run's fingerprint does not matter
        inside = zoo.pretrained("cnn_digits", overrides=TINY, cache_dir=tmp_path, progress=False, log=messages.append)
    assert len(messages) == 1
    np.testing.assert_array_equal(_leaves(inside.params)[0], _leaves(first.params)[0])
    other = zoo.entry_dir("cnn_digits", zoo.entry_config("cnn_digits", {**TINY, "seed": 1}), tmp_path)
    assert other != first.path


def test_env_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARSEJAX_CACHE", str(tmp_path / "c"))
    assert zoo.cache_root() == tmp_path / "c"
    with pytest.raises(ValueError, match="unknown config key"):
        zoo.entry_config("cnn_digits", {"stepz": 3})
    with pytest.raises(ValueError, match="name must be one of"):
        zoo.entry_config("resnet")


@pytest.mark.slow
def test_mae_entry_and_transfer_to_vit(tmp_path):
    mae = zoo.pretrained("vit_digits_mae", overrides={**TINY, "steps": 2, "track_every": 2, "model_kwargs": {"patch_size": 2, "d_model": 16,
                                                                               "n_layers": 1, "n_heads": 2}},
                         cache_dir=tmp_path, progress=False, log=lambda m: None)
    vit = ViT(10, patch_size=2, d_model=16, n_layers=1, n_heads=2)
    x = jnp.zeros((2, 8, 8, 1))
    params = zoo.vit_from_mae(mae.params, vit, jax.random.PRNGKey(0), x)
    np.testing.assert_array_equal(np.asarray(params["params"]["block_0"]["fc1"]["kernel"]),
                                  np.asarray(mae.params["params"]["block_0"]["fc1"]["kernel"]))
    assert vit.apply(params, x).shape == (2, 10)
    assert "recon" not in params["params"] and "mask_token" not in params["params"]
