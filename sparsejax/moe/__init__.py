"""Mixture of experts (top-k MoE FFN, load-balancing loss) and fully sharded sparse data parallelism
(Hecate FSSDP, P49) on jax.sharding / shard_map: `sparsejax.moe.moe`, `sparsejax.moe.fssdp`."""
