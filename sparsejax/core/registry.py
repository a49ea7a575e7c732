"""A registry of sparse training algorithms and a config factory for sweeps:
``sj.create(config, inner)`` builds any of them from a dict (or an ``ml_collections.ConfigDict``)
with jaxpruner's key names, so a sweep is a list of dicts.

=====================  ==========================================================  ============================
``algorithm``          built with                                                   jaxpruner name
=====================  ==========================================================  ============================
``no_prune``           ``inner`` itself                                             ``no_prune``
``static_sparse``      :func:`keep_mask` on a random mask drawn at ``init``         ``static_sparse``
``magnitude``          :func:`gradual_pruning` (``method="magnitude"``)             ``magnitude``
``random``             :func:`gradual_pruning` (``method="random"``)                ``random``
``saliency``           :func:`gradual_pruning` (``method="saliency"``, ``|w*g|``)   ``saliency``
``global_magnitude``   :func:`gradual_pruning` (one threshold over all layers)      ``global_magnitude``
``global_saliency``    :func:`gradual_pruning` (one threshold, ``|w*g|``)           ``global_saliency``
``magnitude_ste``      :func:`sparsejax.core.ste.ste_magnitude_pruning`             ``magnitude_ste``
``set``                :func:`sparsejax.pruning.sparse_evolutionary_training`       ``set``
``rigl``               :func:`sparsejax.pruning.rigl`                               ``rigl``
=====================  ==========================================================  ============================

Keys (jaxpruner's, all optional but ``algorithm`` and ``sparsity``): ``dist_type`` (``uniform``,
``er``, ``erk``), ``sparsity_type`` (``"nm_2,4"``, ``"block_4,4"``, ``"channel_-1"``, ``"group_8"``),
``update_freq``, ``update_start_step``, ``update_end_step`` (a one-shot prune when equal; default
0 and 0), ``drop_fraction`` (SET/RigL, default 0.3), ``rng_seed``, ``custom_sparsity_map`` (leaf-path
glob -> sparsity or ``None``), ``filter_fn`` (``(path, leaf) -> bool``), plus sparsejax's knobs
``power``, ``initial_sparsity``, ``erk_power_scale``, ``skip_step``, ``reset_state``, ``drop_rule``,
``packed_masks`` (``static_sparse``: ``"uint8"``/``"uint32"`` bit-packed mask in the state).
Unlike jaxpruner, SET/RigL get the drop fraction's cosine decay only for ``rigl`` (SET keeps it
constant, as in the SET paper) unless ``drop_schedule`` says otherwise.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import optax

from sparsejax.core.densities import DISTRIBUTIONS
from sparsejax.core.masks import random_mask
from sparsejax.core.sparsity_types import parse_sparsity_type
from sparsejax.core.transforms import gradual_pruning, keep_mask
from sparsejax.core.validation import check_choice, check_callable

KEYS = ("algorithm", "sparsity", "dist_type", "sparsity_type", "update_freq", "update_start_step", "update_end_step",
        "drop_fraction", "drop_schedule", "rng_seed", "custom_sparsity_map", "filter_fn", "power", "initial_sparsity",
        "erk_power_scale", "skip_step", "reset_state", "drop_rule", "packed_masks")

ALGORITHM_REGISTRY: dict[str, Callable[[dict, optax.GradientTransformation], optax.GradientTransformation]] = {}


def register_algorithm(name: str, factory: Callable[[dict, optax.GradientTransformation], Any]) -> None:
    """Add ``factory(config: dict, inner) -> GradientTransformation`` under ``name``."""
    check_callable("factory", factory)
    if not isinstance(name, str) or not name:
        raise ValueError(f"algorithm name must be a non-empty string, got {name!r}")
    ALGORITHM_REGISTRY[name] = factory


def all_algorithm_names() -> tuple[str, ...]:
    """Names accepted by :func:`create`."""
    return tuple(ALGORITHM_REGISTRY)


def _densities(c, params):
    kw = {"predicate": c.get("filter_fn"), "overrides": c.get("custom_sparsity_map")}
    if c["dist_type"] == "erk":
        kw["erk_power_scale"] = c.get("erk_power_scale", 1.0)
    return DISTRIBUTIONS[c["dist_type"]](params, c["sparsity"], **kw)


def _initial_mask(c):
    key = jax.random.PRNGKey(c.get("rng_seed", 0))
    stype = parse_sparsity_type(c.get("sparsity_type"))
    return lambda params: random_mask(key, params, _densities(c, params), sparsity_type=stype)


def _gradual(method):
    def build(c, inner):
        start = c.get("update_start_step", 0)
        end = c.get("update_end_step", start)
        return gradual_pruning(inner, c["sparsity"], start, end, c.get("update_freq", 1), method, c["dist_type"],
                               seed=c.get("rng_seed", 0), predicate=c.get("filter_fn"),
                               sparsity_type=c.get("sparsity_type"), power=c.get("power", 3),
                               initial_sparsity=c.get("initial_sparsity", 0.0),
                               overrides=c.get("custom_sparsity_map"), erk_power_scale=c.get("erk_power_scale", 1.0))

    return build


def _dst(grow):
    def build(c, inner):
        from sparsejax.pruning.dst import dynamic_sparse

        kw = {k: c[k] for k in ("skip_step", "reset_state") if k in c}
        return dynamic_sparse(
            inner, _initial_mask(c), grow=grow, update_every=c.get("update_freq", 100),
            end_step=c.get("update_end_step", 1000), begin_step=c.get("update_start_step", 0),
            drop_fraction=c.get("drop_fraction", 0.3),
            schedule=c.get("drop_schedule", "cosine" if grow == "gradient" else "constant"),
            key=jax.random.PRNGKey(c.get("rng_seed", 0) + 1), sparsity_type=c.get("sparsity_type"),
            drop_rule=c.get("drop_rule", "sign" if grow == "random" and c.get("sparsity_type") in (None, "unstructured")
                            else "magnitude"), **kw)

    return build


def _ste(c, inner):
    from sparsejax.core.ste import ste_magnitude_pruning

    start = c.get("update_start_step", 0)
    return ste_magnitude_pruning(inner, c["sparsity"], begin_step=start, end_step=c.get("update_end_step", start),
                                 distribution=c["dist_type"], sparsity_type=c.get("sparsity_type"),
                                 power=c.get("power", 3), predicate=c.get("filter_fn"))


for _name, _factory in {
    "no_prune": lambda c, inner: inner,
    "static_sparse": lambda c, inner: keep_mask(inner, _initial_mask(c), packed=c.get("packed_masks")),
    "magnitude": _gradual("magnitude"), "random": _gradual("random"), "saliency": _gradual("saliency"),
    "global_magnitude": _gradual("global_magnitude"), "global_saliency": _gradual("global_saliency"),
    "magnitude_ste": _ste, "set": _dst("random"), "rigl": _dst("gradient"),
}.items():
    register_algorithm(_name, _factory)


def create(config, inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """Build the algorithm ``config["algorithm"]`` around the optax optimizer ``inner``.

    ``config`` is a mapping or an ``ml_collections.ConfigDict`` (anything with ``to_dict()``); see
    the module docstring for the keys. Unknown keys raise, so a typo in a sweep never passes silently.
    """
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict or a ConfigDict, got {type(config).__name__}")
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(f"inner must be an optax.GradientTransformation, got {type(inner).__name__}")
    c = dict(config)
    unknown = sorted(set(c) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; allowed: {list(KEYS)}")
    if "algorithm" not in c:
        raise ValueError("config needs 'algorithm'; one of " + ", ".join(all_algorithm_names()))
    check_choice("algorithm", c["algorithm"], all_algorithm_names())
    if c["algorithm"] != "no_prune" and "sparsity" not in c:
        raise ValueError(f"config for {c['algorithm']!r} needs 'sparsity'")
    c.setdefault("dist_type", "uniform")
    check_choice("dist_type", c["dist_type"], tuple(DISTRIBUTIONS))
    if "sparsity_type" in c:
        parse_sparsity_type(c["sparsity_type"])
    return ALGORITHM_REGISTRY[c["algorithm"]](c, inner)
