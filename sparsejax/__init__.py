"""sparsejax: pure-functional JAX implementations of sparse training, pruning and structured
sparsity (masking transforms composable with any optax optimizer and flax model)."""
from sparsejax.core import *  # noqa: F401,F403
from sparsejax.core import __all__ as _core_all

__version__ = "0.1.0"

__all__ = list(_core_all)
