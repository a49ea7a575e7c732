"""Optimal transport solvers built on ott-jax: Sinkhorn-Newton-Sparse (P29).

    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem
    prob = linear_problem.LinearProblem(pointcloud.PointCloud(x, y, epsilon=1e-2))
    out = SinkhornNewtonSparse(threshold=1e-6)(prob)
    out.matrix, out.reg_ot_cost, out.n_sinkhorn_iters, out.n_newton_iters, out.newton_errors
"""
from generative.ot.benchmark import compare_with_sinkhorn
from generative.ot.sns import (
    SinkhornNewtonSparse,
    SNSOutput,
    SparsePlan,
    check_balanced,
    lyapunov,
    marginal_error,
    num_kept,
    sparse_hessian_matvec,
    sparsify,
    sparsify_level,
)

__all__ = [
    "SNSOutput",
    "SinkhornNewtonSparse",
    "SparsePlan",
    "check_balanced",
    "compare_with_sinkhorn",
    "lyapunov",
    "marginal_error",
    "num_kept",
    "sparse_hessian_matvec",
    "sparsify",
    "sparsify_level",
]
