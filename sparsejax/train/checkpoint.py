"""Resumable training loops with orbax checkpoints.

A loop keeps its whole state (params, optimizer state, PRNG key, ...) in one pytree and calls
:meth:`LoopCheckpointer.maybe_save` after each step. Restarted with the same seed and config,
:meth:`LoopCheckpointer.restore` returns the last saved step and state, so the continued run ends
with exactly the result of an uninterrupted one provided the loop derives its batches from the
step number (e.g. ``jax.random.fold_in(key, step)``), never from hidden iterator state.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class LoopCheckpointer:
    """Save a training-loop state every ``every`` steps into ``directory`` (orbax)."""

    def __init__(self, directory: str | Path, every: int, *, max_to_keep: int = 2, enabled: bool = True):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = int(every)
        self.enabled = enabled
        self._manager = None
        if enabled:
            options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
            self._manager = ocp.CheckpointManager(Path(directory).absolute(), options=options)

    def restore(self, state: Any) -> tuple[int, Any]:
        """Return ``(completed_steps, state)`` from the newest checkpoint, or ``(0, state)``."""
        if self._manager is None:
            return 0, state
        step = self._manager.latest_step()
        if step is None:
            return 0, state
        template = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)
        restored = self._manager.restore(step, args=ocp.args.StandardRestore(template))
        return int(step), restored

    def maybe_save(self, completed_steps: int, state: Any, *, force: bool = False) -> bool:
        """Save ``state`` when ``completed_steps`` is a multiple of ``every`` (or ``force``)."""
        if self._manager is None or not (force or completed_steps % self.every == 0):
            return False
        if self._manager.latest_step() == completed_steps:
            return False
        self._manager.save(completed_steps, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()
        return True

    def close(self) -> None:
        """Flush pending writes."""
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
