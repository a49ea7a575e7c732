"""Latent Spectral Models for PDEs (P15) and the PDE solvers that generate their data.

Generators (JAX, jit + vmap, seeded, cached by :func:`cached`): :func:`darcy_dataset`
(2-D Darcy flow, sparse CG solve), :func:`navier_stokes_dataset` (2-D vorticity, pseudo-spectral),
:func:`burgers_dataset` (1-D viscous Burgers, pseudo-spectral IF-RK4).
Models (flax.linen): :class:`LSM` with :class:`NeuralSpectralBlock`, baselines :class:`FNO` and
:class:`UNet`; loss/metric :func:`relative_l2`.
"""
from generative.pde.burgers import burgers_dataset, solve_burgers
from generative.pde.cache import DEFAULT_DATA_DIR, cache_path, cached
from generative.pde.darcy import (darcy_coefficient, darcy_dataset, darcy_operator, face_coefficients,
                                  solve_darcy)
from generative.pde.fno import FNO, SpectralConv
from generative.pde.grf import fno_sigma, gaussian_random_field
from generative.pde.losses import relative_l2
from generative.pde.lsm import (LSM, NeuralSpectralBlock, UNet, patchify, trigonometric_basis,
                                unpatchify)
from generative.pde.navier_stokes import fno_forcing, navier_stokes_dataset, solve_vorticity

__all__ = [
    "gaussian_random_field", "fno_sigma",
    "darcy_coefficient", "darcy_operator", "face_coefficients", "solve_darcy", "darcy_dataset",
    "fno_forcing", "solve_vorticity", "navier_stokes_dataset",
    "solve_burgers", "burgers_dataset",
    "cache_path", "cached", "DEFAULT_DATA_DIR",
    "relative_l2",
    "LSM", "UNet", "NeuralSpectralBlock", "patchify", "unpatchify", "trigonometric_basis",
    "FNO", "SpectralConv",
]
