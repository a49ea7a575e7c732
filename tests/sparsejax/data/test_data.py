"""Bundled digits, synthetic data, the CIFAR-10 pickle loader and stateless batching."""
import pickle

import jax
import numpy as np
import pytest

from sparsejax.data import batch_indices, load_cifar10, load_digits, num_batches, synthetic_classification


def test_digits_split_is_normalised_stratified_and_reproducible():
    a, b = load_digits(seed=3), load_digits(seed=3)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert a.x_train.shape[1:] == (8, 8, 1) and a.x_train.dtype == np.float32
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    assert len(a.x_train) + len(a.x_test) == 1797 and a.num_classes == 10
    assert np.bincount(a.y_test).min() >= 40  # stratified: every class well represented
    assert load_digits(flatten=True).x_train.shape[1] == 64
    with pytest.raises(ValueError, match="test_size"):
        load_digits(test_size=1.5)


def test_synthetic_classification_shapes():
    s = synthetic_classification(n_samples=400, n_features=8, n_classes=3)
    assert s.x_train.shape == (300, 8) and s.num_classes == 3
    np.testing.assert_allclose(np.concatenate([s.x_train, s.x_test]).mean(0), 0.0, atol=1e-5)


def _write_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    with open(path, "wb") as fh:
        pickle.dump({b"data": data, b"labels": labels}, fh)
    return data, labels


def test_cifar_loader_reads_pickles(tmp_path):
    data, labels = _write_batch(tmp_path / "data_batch_1", 5, 0)
    _write_batch(tmp_path / "data_batch_2", 3, 1)
    _write_batch(tmp_path / "test_batch", 4, 2)
    split = load_cifar10(tmp_path)
    assert split.x_train.shape == (8, 32, 32, 3) and split.x_test.shape == (4, 32, 32, 3)
    # channel-first rows become HWC images: pixel (0, 1) of channel 2 is data[0, 2*1024 + 1]
    assert split.x_train[0, 0, 1, 2] == pytest.approx(data[0, 2 * 1024 + 1] / 255.0)
    assert split.y_train[:5].tolist() == labels


def test_cifar_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_cifar10(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="data_batch"):
        load_cifar10(tmp_path)
    with open(tmp_path / "data_batch_1", "wb") as fh:
        pickle.dump({b"nope": 1}, fh)
    with pytest.raises(ValueError, match="not a CIFAR-10"):
        load_cifar10(tmp_path)


def test_batch_indices_cover_each_epoch_once():
    key = jax.random.PRNGKey(0)
    n, bs = 50, 10
    epoch = np.concatenate([np.asarray(batch_indices(key, t, n, bs)) for t in range(num_batches(n, bs))])
    assert sorted(epoch.tolist()) == list(range(n))
    nxt = np.asarray(batch_indices(key, num_batches(n, bs), n, bs))
    assert not np.array_equal(nxt, epoch[:bs])  # a new permutation each epoch
    with pytest.raises(ValueError, match="batch_size"):
        num_batches(5, 10)
