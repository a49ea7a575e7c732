"""A cache of small pre-trained models shared by the pruning experiments (and later issues).

:func:`pretrained` returns a trained model, training it once with a fixed seed and keeping it
under ``$SPARSEJAX_CACHE/zoo`` (default ``$XDG_CACHE_HOME/sparsejax/zoo`` or
``~/.cache/sparsejax/zoo``) as an orbax checkpoint plus an ``info.json`` (config, metrics,
training history). The directory name holds a hash of the config and :data:`ZOO_VERSION`, so a
changed recipe never loads stale weights. The first call prints which model is being trained and
shows a progress bar; later calls load it in a second.

Entries (:data:`ZOO`):

* ``cnn_digits`` — :class:`sparsejax.nn.CNN` on digits, SGD with momentum (the Sparse Model Soups
  recipe: momentum 0.9, weight decay 1e-4, linear decay);
* ``vit_digits_supervised`` — :class:`sparsejax.nn.ViT` on digits, cross-entropy;
* ``vit_digits_mae`` — the same encoder pre-trained self-supervised by masked-patch
  reconstruction (SimMIM-style: masked patches are replaced by a learned token and the encoder's
  output tokens regress their pixels; loss on masked patches only). ``params`` are those of
  :class:`MaskedPatchViT`; :func:`vit_from_mae` turns them into ``ViT`` params with a new head;
* ``lm_grammar_small`` / ``lm_grammar_large`` — :class:`sparsejax.nn.DecoderLM` on the PCFG
  corpus with 1 500 vs 20 000 training sentences, same steps.

Every entry also records the near-zero weight fraction (:func:`sparsejax.pruning.near_zero_fraction`)
every ``track_every`` steps — the "abrupt sparsification" curve of P41.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.validation import check_choice
from sparsejax.nn.transformer import encode_tokens, image_patches

ZOO_VERSION = 1

ZOO: dict[str, dict] = {
    "cnn_digits": {"kind": "classifier", "model": "cnn", "model_kwargs": {"channels": [16, 32], "hidden": 64},
                   "optimizer": "sgd", "learning_rate": 0.05, "weight_decay": 1e-4, "steps": 600,
                   "batch_size": 64, "seed": 0, "track_every": 100},
    "vit_digits_supervised": {"kind": "classifier", "model": "vit",
                              "model_kwargs": {"patch_size": 2, "d_model": 64, "n_layers": 2, "n_heads": 4},
                              "optimizer": "adamw", "learning_rate": 2e-3, "weight_decay": 1e-4, "steps": 800,
                              "batch_size": 64, "seed": 0, "track_every": 100},
    "vit_digits_mae": {"kind": "mae", "model": "vit",
                       "model_kwargs": {"patch_size": 2, "d_model": 64, "n_layers": 2, "n_heads": 4},
                       "optimizer": "adamw", "learning_rate": 2e-3, "weight_decay": 1e-4, "steps": 800,
                       "batch_size": 64, "seed": 0, "track_every": 100, "mask_ratio": 0.5},
    "lm_grammar_small": {"kind": "lm", "model_kwargs": {"d_model": 64, "n_layers": 2, "n_heads": 4, "max_len": 32},
                         "optimizer": "adamw", "learning_rate": 2e-3, "weight_decay": 1e-4, "steps": 800,
                         "batch_size": 32, "seed": 0, "track_every": 100, "n_sentences": 1500, "seq_len": 32},
    "lm_grammar_large": {"kind": "lm", "model_kwargs": {"d_model": 64, "n_layers": 2, "n_heads": 4, "max_len": 32},
                         "optimizer": "adamw", "learning_rate": 2e-3, "weight_decay": 1e-4, "steps": 800,
                         "batch_size": 32, "seed": 0, "track_every": 100, "n_sentences": 20000, "seq_len": 32},
}


class Pretrained(NamedTuple):
    """A cached model: the flax ``model``, its trained ``params``, ``info`` (config, metrics,
    history) and the cache ``path``."""

    model: Any
    params: Any
    info: dict
    path: Path


def cache_root() -> Path:
    """``$SPARSEJAX_CACHE`` or ``$XDG_CACHE_HOME/sparsejax`` (default ``~/.cache/sparsejax``)."""
    env = os.environ.get("SPARSEJAX_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sparsejax"


def entry_config(name: str, overrides: dict | None = None) -> dict:
    """The config of zoo entry ``name`` with ``overrides`` applied (unknown keys raise)."""
    check_choice("name", name, sorted(ZOO))
    config = json.loads(json.dumps(ZOO[name]))
    for key, value in (overrides or {}).items():
        if key not in config:
            raise ValueError(f"unknown config key {key!r} for zoo entry {name!r}; valid keys: {', '.join(sorted(config))}")
        config[key] = value
    return config


def entry_dir(name: str, config: dict, root: Path | None = None) -> Path:
    """Cache directory of an entry: ``root/zoo/<name>-<hash of config and ZOO_VERSION>``."""
    digest = hashlib.sha1(json.dumps({"v": ZOO_VERSION, "config": config}, sort_keys=True).encode()).hexdigest()[:12]
    return Path(root or cache_root()) / "zoo" / f"{name}-{digest}"


class MaskedPatchViT(nn.Module):
    """ViT encoder for masked-patch reconstruction. Its parameter names (``patch_embed``,
    ``pos_embedding``, ``block_i``, ``ln_f``) are those of :class:`sparsejax.nn.ViT`, plus a
    learned ``mask_token`` and a per-token pixel head ``recon``. ``__call__(x, patch_mask)``
    returns predicted patches ``(B, tokens, p*p*c)``; ``patch_mask[b, t]`` = patch is hidden."""

    patch_size: int = 2
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    mlp_ratio: int = 2

    @nn.compact
    def __call__(self, x, patch_mask):
        patches = image_patches(x, self.patch_size)
        tokens = nn.Dense(self.d_model, name="patch_embed")(patches)
        token = self.param("mask_token", nn.initializers.normal(0.02), (self.d_model,))
        tokens = jnp.where(patch_mask[..., None], token, tokens)
        tokens = encode_tokens(self, tokens, n_layers=self.n_layers, n_heads=self.n_heads, mlp_ratio=self.mlp_ratio)
        return nn.Dense(patches.shape[-1], name="recon")(tokens)


def mae_loss(model: MaskedPatchViT, params, x, key, mask_ratio: float):
    """Mean squared error on the hidden patches, ``round(mask_ratio * tokens)`` hidden per image."""
    patches = image_patches(x, model.patch_size)
    b, t, _ = patches.shape
    n_hidden = max(1, int(round(mask_ratio * t)))
    ranks = jnp.argsort(jax.random.uniform(key, (b, t)), axis=1).argsort(axis=1)
    hidden = ranks < n_hidden
    pred = model.apply(params, x, hidden)
    err = jnp.mean((pred - patches) ** 2, axis=-1)
    return jnp.sum(err * hidden) / jnp.sum(hidden)


def vit_from_mae(mae_params, vit_model, key: jax.Array, sample_x):
    """``ViT`` params whose encoder is the MAE encoder and whose ``head`` is freshly initialised."""
    fresh = vit_model.init(key, sample_x)
    enc = mae_params["params"]
    merged = {k: (enc[k] if k in enc and k != "head" else v) for k, v in fresh["params"].items()}
    return {"params": merged}


def _model(config: dict):
    from sparsejax.data import VOCAB
    from sparsejax.nn import CNN, ViT, DecoderLM

    kw = dict(config["model_kwargs"])
    if config["kind"] == "lm":
        return DecoderLM(len(VOCAB), **kw)
    if config["kind"] == "mae":
        return MaskedPatchViT(**kw)
    return {"cnn": CNN, "vit": ViT}[config["model"]](10, **kw)


def _data(config: dict):
    from sparsejax.data import grammar_corpus, lm_windows, load_digits

    if config["kind"] == "lm":
        train = lm_windows(grammar_corpus(config["n_sentences"], seed=config["seed"]), config["seq_len"])
        test = lm_windows(grammar_corpus(500, seed=10_000 + config["seed"]), config["seq_len"])
        return train[:, :-1], train[:, 1:], test[:, :-1], test[:, 1:]
    split = load_digits(seed=0)
    return split.x_train, split.y_train, split.x_test, split.y_test


@functools.lru_cache(maxsize=None)
def _summed_ce(model):
    from sparsejax.train import cross_entropy_loss

    return jax.jit(lambda p, xb, yb: cross_entropy_loss(model.apply(p, xb), yb) * xb.shape[0])


def lm_perplexity(model, params, x, y, batch_size: int = 256) -> float:
    """exp(mean next-token cross-entropy) of a DecoderLM over windows ``(x, y)``."""
    f = _summed_ce(model)
    total = sum(float(f(params, x[i:i + batch_size], y[i:i + batch_size])) for i in range(0, len(x), batch_size))
    return float(np.exp(total / len(x)))


def optimizer(config: dict) -> optax.GradientTransformation:
    """The entry's optimizer: SGD (momentum 0.9, Nesterov, coupled weight decay) with linear decay
    to 0, or AdamW with 10 % warm-up and cosine decay."""
    steps, lr, wd = config["steps"], config["learning_rate"], config["weight_decay"]
    if config["optimizer"] == "sgd":
        return optax.chain(optax.add_decayed_weights(wd),
                           optax.sgd(optax.linear_schedule(lr, 0.0, steps), momentum=0.9, nesterov=True))
    sched = optax.warmup_cosine_decay_schedule(0.0, lr, max(1, steps // 10), steps)
    return optax.adamw(sched, weight_decay=wd)


def _train(name: str, config: dict, progress: bool) -> tuple[Any, dict]:
    from tqdm.auto import tqdm

    from sparsejax.pruning.essential import near_zero_fraction
    from sparsejax.train import TrainState, evaluate, fit, make_eval_step, make_train_step
    from sparsejax.train.divergence import check_finite_loss
    from sparsejax.train.tracking import log_scalars

    model = _model(config)
    x_tr, y_tr, x_te, y_te = _data(config)
    key = jax.random.PRNGKey(config["seed"])
    k_init, k_data, k_mask = jax.random.split(key, 3)
    if config["kind"] == "mae":
        params = model.init(k_init, x_tr[:1], jnp.zeros((1, image_patches(x_tr[:1], model.patch_size).shape[1]), bool))
    else:
        params = model.init(k_init, x_tr[:1])
    tx = optimizer(config)
    if config["kind"] == "mae":
        ratio = config["mask_ratio"]

        @jax.jit
        def step(state, xb, _):
            loss, grads = jax.value_and_grad(
                lambda p: mae_loss(model, p, xb, jax.random.fold_in(k_mask, state.step), ratio))(state.params)
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), loss
    else:
        step = make_train_step(model.apply, tx)
    state = TrainState.create(params, tx)
    steps, every = config["steps"], max(1, config["track_every"])
    history = {"step": [0], "loss": [None], "near_zero": [near_zero_fraction(params)["total"]]}
    bar = tqdm(total=steps, desc=f"zoo: training {name}", disable=not progress, dynamic_ncols=True)
    done, chunk = 0, 0
    while done < steps:
        n = min(every, steps - done)
        state, losses = fit(step, state, x_tr, y_tr, steps=n, batch_size=config["batch_size"],
                            key=jax.random.fold_in(k_data, chunk))
        done, chunk = done + n, chunk + 1
        mean_loss = float(np.mean(losses))
        check_finite_loss(done, mean_loss)
        history["step"].append(done)
        history["loss"].append(mean_loss)
        history["near_zero"].append(near_zero_fraction(state.params)["total"])
        log_scalars(done, {"loss": mean_loss, "near_zero": history["near_zero"][-1]}, prefix=f"zoo/{name}")
        bar.update(n)
        bar.set_postfix(loss=f"{mean_loss:.3f}")
    bar.close()
    metrics = {"final_train_loss": history["loss"][-1]}
    if config["kind"] == "classifier":
        metrics["test_accuracy"] = evaluate(make_eval_step(model.apply), state.params, x_te, y_te)["accuracy"]
    elif config["kind"] == "lm":
        metrics["test_perplexity"] = lm_perplexity(model, state.params, x_te, y_te)
    else:
        metrics["test_mae_loss"] = float(jax.jit(lambda p, x: mae_loss(model, p, x, jax.random.PRNGKey(123),
                                                                       config["mask_ratio"]))(state.params, x_te))
    return state.params, {"config": config, "metrics": metrics, "history": history}


def _fingerprint(path: Path) -> dict:
    """The cache entry's own checkpoint fingerprint (its config hash), independent of the run using it."""
    return {"zoo_entry": path.name, "zoo_version": ZOO_VERSION}


def pretrained(name: str, *, overrides: dict | None = None, cache_dir: str | Path | None = None,
               progress: bool = True, log: Callable[[str], None] | None = None) -> Pretrained:
    """Load zoo entry ``name`` from the cache, training (and caching) it on first use.

    ``overrides`` changes the recipe (e.g. ``{"steps": 20}`` in tests; a different config is a
    different cache entry); ``cache_dir`` replaces :func:`cache_root`.
    """
    from sparsejax.train.checkpoint import LoopCheckpointer

    config = entry_config(name, overrides)
    path = entry_dir(name, config, None if cache_dir is None else Path(cache_dir))
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    model = _model(config)
    info_path = path / "info.json"
    if info_path.exists():
        x_tr = _data(config)[0]
        if config["kind"] == "mae":
            template = model.init(jax.random.PRNGKey(0), x_tr[:1],
                                  jnp.zeros((1, image_patches(x_tr[:1], model.patch_size).shape[1]), bool))
        else:
            template = model.init(jax.random.PRNGKey(0), x_tr[:1])
        with LoopCheckpointer(path / "checkpoint", every=1, fingerprint=_fingerprint(path)) as ckpt:
            _, params = ckpt.restore(template)
        return Pretrained(model, params, json.loads(info_path.read_text()), path)
    log(f"[sparsejax zoo] '{name}' is not cached yet: training it once ({config['steps']} steps, seed "
        f"{config['seed']}); it will be kept in {path} (set SPARSEJAX_CACHE to move the cache)")
    params, info = _train(name, config, progress)
    path.mkdir(parents=True, exist_ok=True)
    with LoopCheckpointer(path / "checkpoint", every=1, fingerprint=_fingerprint(path)) as ckpt:
        ckpt.maybe_save(config["steps"], params, force=True)
    info_path.write_text(json.dumps(info, indent=1))
    return Pretrained(model, params, info, path)


__all__ = ["ZOO", "ZOO_VERSION", "Pretrained", "pretrained", "cache_root", "entry_config", "entry_dir",
           "MaskedPatchViT", "mae_loss", "vit_from_mae", "lm_perplexity", "optimizer"]
