"""Shared pieces of the sparsejax.llm tests."""
import jax
import pytest

from sparsejax.llm import forward


@pytest.fixture(scope="session")
def fwd():
    """``forward`` compiled once per parameter shapes (eager op-by-op dispatch is slower in tests)."""
    return jax.jit(forward, static_argnames=("config", "attention_fn"))
