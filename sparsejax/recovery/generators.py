"""Synthetic problems for the recovery papers (numpy; ``rng`` is a ``numpy.random.Generator`` or an int seed).

* :func:`kron_sparse_problem` (P31): the official generator of ``KroSBL_f/noisy_compare.m`` - Gaussian
  factor dictionaries ``A_i`` (M_i x N_i, iid N(0, 1)), ``x = x_1 kron x_2 kron x_3`` with ``K`` random nonzeros
  (N(0, 1)) per factor, and noise of variance ``mean|H x|^2 / 10^(SNR/10)`` (``simulationS.m``).
* :func:`irs_mimo_problem` (P31): the IRS-aided MIMO channel of ``PC-KroSBL/main.m`` - uniform-grid steering
  dictionaries (``generate_dict.m``), one MS angle of departure, an ``angle_spread``-wide cluster of IRS angles
  of arrival and of BS angles of arrival with CN(0, 1) gains, QPSK pilots (``pilot_gen.m``) and random +-1
  IRS patterns. The measurement ``y = (H_p1 kron H_p2 kron A_BS) x + n`` with the sparse cascaded-channel
  vector ``x`` (our closed form, checked in the tests against the physical received signal
  ``vec(H2 diag(phi_k) H1 X)``). The official code regenerates an IRS pattern whose cascaded channel is
  ~0; we do not (measure zero with random patterns).
* :func:`sparse_regression_data` (P10): Rademacher covariates (bounded, so truncation at ``tau_x = 1`` is
  exact), a k-sparse unit-norm ``theta``, Gaussian label noise.
* :func:`hyperspectral_scene` (P22): smooth positive endmember spectra (sums of Gaussian bumps), abundances
  ``softmax(s * z)`` of smoothed Gaussian random fields ``z`` on an image grid (pure interiors, mixed borders),
  optional pure pixels, additive noise at a given SNR and corrupted ("outlier") channels.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from sparsejax.core.validation import check_int, check_number


def as_rng(rng) -> np.random.Generator:
    """``rng`` itself, or a fresh ``numpy.random.Generator`` seeded with the int ``rng``."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(check_int("rng", rng, minimum=0))


def kron_all(mats):
    """Kronecker product ``mats[0] kron mats[1] kron ...`` (vectors or matrices)."""
    out = mats[0]
    for m in mats[1:]:
        out = np.kron(out, m)
    return out


def noise_variance(signal, snr_db: float) -> float:
    """``mean|signal|^2 / 10^(snr_db / 10)`` (the official SNR definition)."""
    check_number("snr_db", snr_db)
    return float(np.mean(np.abs(signal) ** 2) / 10 ** (snr_db / 10))


def kron_sparse_problem(rng, n: int = 15, m=(8, 12, 15), k: int = 3, snr_db: float = 20.0) -> dict:
    """One P31 trial: ``A_i`` (m_i x n), ``x = kron(x_i)`` with ``k`` nonzeros per factor, ``y = H x + noise``.

    Returns ``dict(A=[A_i], x, y, noise_var, support)`` (``H`` is never formed here)."""
    rng = as_rng(rng)
    n = check_int("n", n, minimum=1)
    m = tuple(check_int(f"m[{i}]", mi, minimum=1) for i, mi in enumerate(m))
    k = check_int("k", k, minimum=1, maximum=n)
    As = [rng.standard_normal((mi, n)) for mi in m]
    factors = []
    for _ in m:
        xi = np.zeros(n)
        xi[rng.choice(n, k, replace=False)] = rng.standard_normal(k)
        factors.append(xi)
    x = kron_all(factors)
    y_clean = kron_all([a @ xi for a, xi in zip(As, factors)])
    var = noise_variance(y_clean, snr_db)
    y = y_clean + np.sqrt(var) * rng.standard_normal(y_clean.shape)
    return {"A": As, "x": x, "y": y, "noise_var": var, "support": np.flatnonzero(x)}


def steering_dictionary(dim: int, resolution: int) -> np.ndarray:
    """``generate_dict.m``: columns ``exp(j pi (2 i / R - 1) [0..dim-1]) / sqrt(dim)``, ``i = 0..R-1``."""
    grid = 2 * np.arange(resolution) / resolution - 1
    return np.exp(1j * np.pi * np.outer(np.arange(dim), grid)) / np.sqrt(dim)


def _qpsk(rng, shape):
    return (rng.choice([-1.0, 1.0], shape) + 1j * rng.choice([-1.0, 1.0], shape)) / np.sqrt(2)


def irs_mimo_problem(rng, ms_antennas: int = 6, bs_antennas: int = 16, irs_elements: int = 256,
                     resolution: int = 18, angle_spread: int = 3, pilots: int = 3, patterns: int = 6,
                     snr_db: float = 12.0) -> dict:
    """One IRS-MIMO channel-estimation trial (official defaults of ``PC-KroSBL/main.m``).

    Returns ``dict(A=[H_p1, H_p2, A_bs], x, y, noise_var, support, y_physical, phys)``: ``y = kron(A) x + n``,
    ``x`` the cascaded channel on the (IRS angle difference, MS angle, BS angle) grid, ``y_physical`` the
    noiseless received signal computed from the physical channels ``phys = (H1, H2, X, Phi)``.
    """
    rng = as_rng(rng)
    for name, v in (("ms_antennas", ms_antennas), ("bs_antennas", bs_antennas), ("irs_elements", irs_elements),
                    ("pilots", pilots), ("patterns", patterns)):
        check_int(name, v, minimum=1)
    r = check_int("resolution", resolution, minimum=2)
    spread = check_int("angle_spread", angle_spread, minimum=1, maximum=r)
    a_bs, a_irs, a_ms = (steering_dictionary(d, r) for d in (bs_antennas, irs_elements, ms_antennas))
    aod_ms = rng.integers(r)
    aoa_irs = (rng.integers(r - spread + 1) + np.arange(spread)) % r
    aod_irs = rng.integers(r)
    aoa_bs = (rng.integers(r - spread + 1) + np.arange(spread)) % r
    alpha_a = (rng.standard_normal(spread) + 1j * rng.standard_normal(spread)) / np.sqrt(2)
    alpha_2 = (rng.standard_normal(spread) + 1j * rng.standard_normal(spread)) / np.sqrt(2)
    c1 = np.sqrt(ms_antennas * irs_elements / spread)
    c2 = np.sqrt(bs_antennas * irs_elements / spread)
    # physical channels: MS -> IRS (H1, irs x ms) and IRS -> BS (H2, bs x irs)
    h1 = c1 * (a_irs[:, aoa_irs] @ alpha_a)[:, None] * a_ms[:, aod_ms].conj()[None, :]
    h2 = c2 * (a_bs[:, aoa_bs] @ alpha_2)[:, None] * a_irs[:, aod_irs].conj()[None, :]
    pilot = _qpsk(rng, (ms_antennas, pilots)) / np.sqrt(ms_antennas)
    phi = rng.choice([-1.0, 1.0], (irs_elements, patterns)) / np.sqrt(irs_elements)
    # received signal, stacked (pattern, pilot, BS antenna) with the BS antenna fastest
    y_phys = np.stack([(h2 @ (phi[:, i, None] * h1) @ pilot).T.reshape(-1) for i in range(patterns)]).reshape(-1)
    # sparse representation: conj(a_irs(d)) * a_irs(i) = exp(-2j pi ((d - i) mod R) n / R) / N_irs
    diff_dict = np.exp(-2j * np.pi * np.outer(np.arange(irs_elements), np.arange(r)) / r) / irs_elements
    h_p1 = phi.T @ diff_dict
    h_p2 = pilot.T @ a_ms.conj()
    x1 = np.zeros(r, complex)
    np.add.at(x1, (aod_irs - aoa_irs) % r, alpha_a)
    x2 = np.zeros(r)
    x2[aod_ms] = 1.0
    x3 = np.zeros(r, complex)
    x3[aoa_bs] = alpha_2
    x = c1 * c2 * kron_all([x1, x2, x3])
    var = noise_variance(y_phys, snr_db)
    noise = np.sqrt(var / 2) * (rng.standard_normal(y_phys.shape) + 1j * rng.standard_normal(y_phys.shape))
    return {"A": [h_p1, h_p2, a_bs], "x": x, "y": y_phys + noise, "noise_var": var, "support": np.flatnonzero(x),
            "y_physical": y_phys, "phys": (h1, h2, pilot, phi)}


def sparse_regression_data(rng, n: int, d: int, k: int, noise_std: float = 0.1, theta=None):
    """``x ~ Rademacher^d`` (n x d, float32), ``theta`` k-sparse with unit norm (random signs, equal
    magnitudes; or the given ``theta``, e.g. to draw users in chunks), ``y = x theta + N(0, noise_std^2)``.
    Returns ``(x, y, theta)``."""
    rng = as_rng(rng)
    n, d = check_int("n", n, minimum=1), check_int("d", d, minimum=1)
    k = check_int("k", k, minimum=1, maximum=d)
    check_number("noise_std", noise_std, minimum=0.0)
    if theta is None:
        theta = np.zeros(d)
        theta[rng.choice(d, k, replace=False)] = rng.choice([-1.0, 1.0], k) / np.sqrt(k)
    elif np.shape(theta) != (d,):
        raise ValueError(f"theta must have shape ({d},), got {np.shape(theta)}")
    x = (2 * rng.integers(0, 2, (n, d), dtype=np.int8) - 1).astype(np.float32)
    y = x @ theta.astype(np.float32) + noise_std * rng.standard_normal(n).astype(np.float32)
    return x, y, theta


def endmember_spectra(rng, bands: int, k: int, bumps: int = 4) -> np.ndarray:
    """``(bands, k)`` smooth positive spectra: a floor of 0.05 plus ``bumps`` Gaussian bumps per endmember."""
    rng = as_rng(rng)
    t = np.linspace(0, 1, check_int("bands", bands, minimum=2))
    out = np.full((bands, check_int("k", k, minimum=1)), 0.05)
    for j in range(k):
        for _ in range(check_int("bumps", bumps, minimum=1)):
            c, w, a = rng.uniform(0, 1), rng.uniform(0.03, 0.15), rng.uniform(0.2, 1.0)
            out[:, j] += a * np.exp(-0.5 * ((t - c) / w) ** 2)
    return out


def hyperspectral_scene(rng, side: int = 32, bands: int = 100, k: int = 4, sharpness: float = 6.0,
                        smooth: float = 3.0, snr_db: float | None = 30.0, outlier_fraction: float = 0.0,
                        outlier_scale: float = 1.0, pure_pixels: bool = True) -> dict:
    """Synthetic linear-mixing scene ``Y = M A (+ noise)`` (bands x side^2) with ``outlier_fraction`` of the
    bands corrupted (each corrupted band replaced by uniform noise on ``[0, outlier_scale max Y]``).

    ``pure_pixels`` overwrites the first ``k`` pixels with the pure endmembers. Returns
    ``dict(Y, Y_clean, M, A, outlier_bands, mixing)`` with ``mixing`` the normalised abundance entropy."""
    rng = as_rng(rng)
    side = check_int("side", side, minimum=2)
    check_number("sharpness", sharpness, minimum=0.0)
    check_number("smooth", smooth, minimum=0.0)
    check_number("outlier_fraction", outlier_fraction, minimum=0.0, maximum=1.0)
    check_number("outlier_scale", outlier_scale, minimum=0.0)
    m = endmember_spectra(rng, bands, k)
    z = np.stack([gaussian_filter(rng.standard_normal((side, side)), smooth) for _ in range(k)])
    z /= z.std(axis=(1, 2), keepdims=True)
    logits = sharpness * z.reshape(k, -1)
    a = np.exp(logits - logits.max(0))
    a /= a.sum(0)
    if pure_pixels:
        a[:, :k] = np.eye(k)
    y_clean = m @ a
    y = y_clean.copy()
    if snr_db is not None:
        y = y + np.sqrt(noise_variance(y_clean, snr_db)) * rng.standard_normal(y.shape)
        y = np.maximum(y, 0.0)
    n_out = int(round(outlier_fraction * bands))
    out_bands = np.sort(rng.choice(bands, n_out, replace=False)) if n_out else np.zeros(0, int)
    if n_out:
        y[out_bands] = rng.uniform(0, outlier_scale * y_clean.max(), (n_out, y.shape[1]))
    ent = -np.sum(np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0)), 0.0), axis=0) / np.log(k) if k > 1 \
        else np.zeros(a.shape[1])
    return {"Y": y, "Y_clean": y_clean, "M": m, "A": a, "outlier_bands": out_bands, "mixing": ent}
