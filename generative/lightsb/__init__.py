"""Light Schrödinger Bridge (Korotin, Gushchin & Burnaev, ICLR 2024; P25).

Wiener prior of volatility ``epsilon``: static problem = entropic OT with cost ``1/2||x-y||^2`` and
entropy weight ``epsilon``; prior transition ``N(y | x, epsilon I)``. See :mod:`.potential`.

    params = fit(key, x0, x1, epsilon=0.1, n_components=16, steps=2000)
    y = sample_plan(key, params, x, num_samples=8)      # (len(x), 8, d)
    path = sample_sde(key, params, x, n_steps=100)      # (len(x), 101, d)
    xt = sample_at_time(key, params, x, 0.5, 8)         # bridge marginal X_t | X_0 = x
"""
from generative.lightsb.benchmark import (
    MixtureBenchmark,
    gaussian_mixture_benchmark,
    plan_moments,
    sample_true_plan,
    source_sampler,
    target_sampler,
    target_variance,
)
from generative.lightsb.bridge import drift, sample_sde
from generative.lightsb.gaussian import (
    bures_wasserstein_sq,
    cbw2_uvp,
    gaussian_eot_conditional,
)
from generative.lightsb.potential import (
    LightSBParams,
    conditional_components,
    conditional_moments,
    covariance_factors,
    init,
    log_c,
    log_potential,
    plan_chunk_rows,
    sample_at_time,
    sample_plan,
)
from generative.lightsb.train import fit, loss

__all__ = [
    "MixtureBenchmark",
    "gaussian_mixture_benchmark",
    "plan_moments",
    "sample_true_plan",
    "source_sampler",
    "target_sampler",
    "target_variance",
    "LightSBParams",
    "bures_wasserstein_sq",
    "cbw2_uvp",
    "conditional_components",
    "conditional_moments",
    "covariance_factors",
    "drift",
    "fit",
    "gaussian_eot_conditional",
    "init",
    "log_c",
    "log_potential",
    "loss",
    "plan_chunk_rows",
    "sample_at_time",
    "sample_plan",
    "sample_sde",
]
