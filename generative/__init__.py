"""Optimal transport, Schrödinger bridges, diffusion, neural PDE solvers and 3D reconstruction.

Homes: ``generative.ot`` (Sinkhorn-Newton-Sparse, P29), ``generative.lightsb`` (Light
Schrödinger Bridge, P25), ``generative.pde`` (latent spectral models and PDE data generators,
P15), ``generative.diffusion`` (small DDPM/DDIM and h-space directions, P17, P30) and
``generative.reconstruction`` (P46, P38).
"""
