"""sparsejax: pure-functional JAX implementations of sparse training, pruning and structured
sparsity (masking transforms composable with any optax optimizer and flax model)."""
