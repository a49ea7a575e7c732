"""Sparse autoencoder with unit-norm decoder columns, aux losses and one inference rule (P37).

Derived from the paper (Ayonrinde 2024, arXiv 2411.02124; no official code exists) and from the
TopK SAE recipe it builds on (Gao et al. 2024). Items marked [R] are reconstructions, not taken
from a published implementation.

* Encoder ``pre = (x - b_dec) W_enc + b_enc`` (N, F); code ``z = ReLU(pre) * mask`` with the mask of
  :func:`sparsejax.sae.allocation.allocate` (TopK / Feature Choice / Mutual Choice); decoder
  ``x_hat = z W_dec^T + b_dec`` with ``W_dec`` of shape (d, F) whose columns have unit norm.
* Init: random unit decoder columns, ``W_enc = W_dec`` (tied at init, as Gao et al.), ``b_dec`` the data
  mean [R: Gao use the geometric median], ``b_enc = 0``.
* Step: Adam on ``NMSE(x, x_hat) + aux_coef * aux``; the decoder gradient is projected orthogonal
  to each column before the update and the columns are renormalised after it (as Gao et al. /
  Bricken et al.; the paper keeps unit-norm decoder columns).
* ``aux_k`` (Gao et al.): reconstruct the stop-gradient residual ``e = x - x_hat`` from the top
  ``k_aux`` pre-activations of dead latents (not fired for ``dead_steps`` steps), normalised MSE,
  coefficient 1/32, ``k_aux = d/2``.
* ``aux_zipf`` [R] (the paper's generalisation of aux_k to under-used features): an EMA of each
  feature's firing frequency ``f_i`` is compared with a Zipf target ``t_r`` proportional to
  ``r^-zipf_target_exponent`` (summing to ``k`` actives per token) at the feature's frequency rank
  ``r``; the under-use weight ``u_i = clip(1 - f_i / t_r, 0, 1)`` (1 for a dead feature) ranks
  ``u_i * ReLU(pre)`` for the top ``k_aux`` auxiliary latents, which reconstruct ``e`` as in aux_k.
  With 0/1 weights (dead or not) it is exactly aux_k.
* Inference rule [R], the same for every method (TopK included): ``z = ReLU(pre) * (pre > theta)``
  per token, with one global ``theta`` calibrated after training on training tokens
  (:func:`calibrate_threshold`) so that the mean L0 equals the method's mean training L0 (the
  global threshold later BatchTopK SAEs keep). Inference is then per token and batch-free.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sparsejax.core.validation import check_array, check_choice, check_int, check_number
from sparsejax.sae.allocation import METHODS, row_top_k_mask, allocate

AUX_LOSSES = ("none", "aux_k", "aux_zipf")


class SAEState(NamedTuple):
    """Parameters, optimizer state and the usage statistics the aux losses and inference rule need."""
    params: dict
    opt_state: optax.OptState
    steps_since_fired: jax.Array  # (F,) int32
    freq_ema: jax.Array           # (F,) fraction of tokens on which each feature fired
    step: jax.Array               # () int32


def init_sae(key: jax.Array, d: int, n_features: int, b_dec=None) -> dict:
    """SAE parameters: unit-norm decoder columns ``W_dec`` (d, F), ``W_enc = W_dec``, ``b_enc = 0``."""
    check_int("d", d, minimum=1)
    check_int("n_features", n_features, minimum=1)
    w = jax.random.normal(key, (d, n_features))
    w = w / jnp.linalg.norm(w, axis=0, keepdims=True)
    b_dec = jnp.zeros(d) if b_dec is None else jnp.asarray(check_array("b_dec", b_dec, shape=(d,)), jnp.float32)
    return {"W_enc": w, "b_enc": jnp.zeros(n_features), "W_dec": w, "b_dec": b_dec}


def pre_activations(params: dict, x: jax.Array) -> jax.Array:
    """Encoder pre-activations ``(x - b_dec) W_enc + b_enc`` of shape (N, F)."""
    return (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]


def decode(params: dict, z: jax.Array) -> jax.Array:
    """Reconstruction ``z W_dec^T + b_dec``."""
    return z @ params["W_dec"].T + params["b_dec"]


def encode(params: dict, x: jax.Array, method: str, k: int, zipf_exponent: float = 0.0) -> jax.Array:
    """Training-time code ``ReLU(pre) * mask`` with the batch allocation ``method`` at sparsity ``k``."""
    pre = pre_activations(params, x)
    return jax.nn.relu(pre) * allocate(pre, method, k, zipf_exponent)


def encode_inference(params: dict, x: jax.Array, threshold) -> jax.Array:
    """The inference rule shared by every method: ``ReLU(pre) * (pre > threshold)`` per token."""
    pre = pre_activations(params, x)
    return jnp.where(pre > threshold, jax.nn.relu(pre), 0.0)


def calibrate_threshold(params: dict, x: jax.Array, l0: float) -> jax.Array:
    """Global threshold ``theta``: ``pre > theta`` keeps ``round(l0 * N)`` entries of ``ReLU(pre)`` over ``x`` (N, d)."""
    l0 = check_number("l0", l0, minimum=0.0)
    acts = jax.nn.relu(pre_activations(params, x)).reshape(-1)
    n_keep = min(max(int(round(l0 * x.shape[0])), 1), acts.size - 1)
    return jnp.maximum(-jnp.sort(-acts)[n_keep], 0.0)


def nmse(x: jax.Array, x_hat: jax.Array) -> jax.Array:
    """Normalised MSE ``sum (x - x_hat)^2 / sum (x - mean x)^2`` (the mean predictor scores 1)."""
    return jnp.sum((x - x_hat) ** 2) / jnp.maximum(jnp.sum((x - x.mean(0)) ** 2), 1e-12)


def normalize_decoder(params: dict) -> dict:
    """``params`` with every decoder column rescaled to unit norm."""
    w = params["W_dec"]
    return {**params, "W_dec": w / jnp.maximum(jnp.linalg.norm(w, axis=0, keepdims=True), 1e-12)}


def project_decoder_grad(grads: dict, params: dict) -> dict:
    """``grads`` with each decoder-column gradient made orthogonal to its (unit) column."""
    w, g = params["W_dec"], grads["W_dec"]
    return {**grads, "W_dec": g - w * jnp.sum(g * w, axis=0, keepdims=True)}


def zipf_underuse_weights(freq: jax.Array, k: int, exponent: float = 1.0) -> jax.Array:
    """[R] Under-use weights ``clip(1 - f_i / t_rank(i), 0, 1)`` against a Zipf target summing to ``k``."""
    n = freq.shape[0]
    target = jnp.arange(1, n + 1, dtype=jnp.float32) ** (-exponent)
    target = k * target / target.sum()
    rank = jnp.zeros(n, jnp.int32).at[jnp.argsort(-freq, stable=True)].set(jnp.arange(n, dtype=jnp.int32))
    return jnp.clip(1.0 - freq / target[rank], 0.0, 1.0)


def aux_reconstruction_loss(params: dict, pre: jax.Array, residual: jax.Array, weights: jax.Array,
                            k_aux: int) -> jax.Array:
    """Normalised MSE of the residual rebuilt from the top ``k_aux`` latents ranked by ``weights * ReLU(pre)``.

    Only latents with positive weight take part; the loss is 0 when none does (aux_k with no dead
    latent). ``residual`` is treated as a constant target.
    """
    eligible = weights > 0
    score = jnp.where(eligible, weights * jax.nn.relu(pre), -jnp.inf)
    mask = row_top_k_mask(score, k_aux) & eligible
    e_hat = (jax.nn.relu(pre) * mask) @ params["W_dec"].T
    e = jax.lax.stop_gradient(residual)
    loss = jnp.sum((e - e_hat) ** 2) / jnp.maximum(jnp.sum(e ** 2), 1e-12)
    return jnp.where(eligible.any(), loss, 0.0)


def init_state(params: dict, optimizer: optax.GradientTransformation) -> SAEState:
    """Fresh training state: no feature has fired yet."""
    f = params["W_dec"].shape[1]
    return SAEState(params, optimizer.init(params), jnp.zeros(f, jnp.int32), jnp.zeros(f), jnp.zeros((), jnp.int32))


def make_sae_step(optimizer: optax.GradientTransformation, method: str, k: int, *, aux: str = "none",
                  aux_coef: float = 1 / 32, k_aux: int | None = None, dead_steps: int = 50,
                  zipf_exponent: float = 0.0, zipf_target_exponent: float = 1.0,
                  ema: float = 0.99) -> Callable[[SAEState, jax.Array], tuple[SAEState, dict]]:
    """A jitted ``step(state, x) -> (state, metrics)`` for one SAE training method.

    ``method`` in ``METHODS``; ``aux`` in ``AUX_LOSSES``; ``k_aux`` defaults to ``d // 2``; a latent is
    dead after ``dead_steps`` steps without firing; ``zipf_exponent`` shapes Feature Choice
    capacities (0: uniform m = kN/F); ``ema`` smooths the firing frequencies aux_zipf uses.
    """
    check_choice("method", method, METHODS)
    check_choice("aux", aux, AUX_LOSSES)
    check_int("k", k, minimum=1)
    check_int("dead_steps", dead_steps, minimum=1)
    check_number("aux_coef", aux_coef, minimum=0.0)
    check_number("ema", ema, minimum=0.0, maximum=1.0, max_inclusive=False)

    def loss_fn(params, state, x):
        pre = pre_activations(params, x)
        mask = allocate(pre, method, k, zipf_exponent)
        z = jax.nn.relu(pre) * mask
        x_hat = decode(params, z)
        recon = nmse(x, x_hat)
        if aux == "none":
            aux_loss = jnp.zeros(())
        else:
            if aux == "aux_k":
                weights = (state.steps_since_fired >= dead_steps).astype(jnp.float32)
            else:
                weights = zipf_underuse_weights(state.freq_ema, k, zipf_target_exponent)
            ka = x.shape[1] // 2 if k_aux is None else k_aux
            aux_loss = aux_reconstruction_loss(params, pre, x - x_hat, weights, min(ka, pre.shape[1]))
        return recon + aux_coef * aux_loss, (recon, aux_loss, z)

    @jax.jit
    def step(state: SAEState, x: jax.Array):
        grads, (recon, aux_loss, z) = jax.grad(loss_fn, has_aux=True)(state.params, state, x)
        grads = project_decoder_grad(grads, state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = normalize_decoder(optax.apply_updates(state.params, updates))
        active = z > 0
        fired = active.any(0)
        freq = jnp.where(state.step == 0, active.mean(0), ema * state.freq_ema + (1 - ema) * active.mean(0))
        new = SAEState(params, opt_state, jnp.where(fired, 0, state.steps_since_fired + 1), freq, state.step + 1)
        metrics = {"nmse": recon, "aux": aux_loss, "l0": active.sum(1).mean(),
                   "dead_fraction": (new.steps_since_fired >= dead_steps).mean()}
        return new, metrics

    return step
