"""Lipschitz bounds for neural networks (P47): LipSDP for ReLU networks, LipSDP-NSR for GroupSort /
MaxMin / Householder networks, the residual-ReLU baseline, the naive norm product and a sampled lower bound."""
from geometry.lipschitz.bounds import jacobian_norms, naive_bound, sampled_lower_bound
from geometry.lipschitz.lipsdp import lipsdp_nsr, lipsdp_relu, lipsdp_residual_relu
from geometry.lipschitz.networks import (
    ACTIVATIONS, apply_network, check_network, groupsort, householder, init_network, maxmin,
    maxmin_householder_vectors,
)

__all__ = ["ACTIVATIONS", "apply_network", "check_network", "groupsort", "householder", "init_network",
           "jacobian_norms", "lipsdp_nsr", "lipsdp_relu", "lipsdp_residual_relu", "maxmin",
           "maxmin_householder_vectors", "naive_bound", "sampled_lower_bound"]
