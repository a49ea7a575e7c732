"""Resumable training loops with orbax checkpoints, fingerprinted with the run that wrote them.

A loop keeps its whole state (params, optimizer state, PRNG key, ...) in one pytree and calls
:meth:`LoopCheckpointer.maybe_save` after each step. Restarted with the same seed and config,
:meth:`LoopCheckpointer.restore` returns the last saved step and state, so the continued run ends
with exactly the result of an uninterrupted one provided the loop derives its batches from the
step number (e.g. ``jax.random.fold_in(key, step)``), never from hidden iterator state.

Fingerprints: inside :func:`use_fingerprint` (the experiment runner wraps every run in one, with
the run's experiment, config, seed and code version) each checkpoint directory gets a
``fingerprint.json``. A checkpointer whose directory holds checkpoints written under another
fingerprint, or checkpoints without one, refuses with :class:`CheckpointMismatch` instead of
restoring them, so a run never continues from a state it did not write. Outside a run (no
fingerprint) the checkpointer behaves as a plain orbax manager.

Several processes (``jax.distributed``, see :mod:`sparsejax.train.distributed`): every process
constructs the checkpointer and calls ``maybe_save``/``restore`` at the same steps (orbax
synchronises them and each process writes its own shards; the directory must be on a file system
all hosts see). Only process 0 writes ``fingerprint.json``. Orbax refuses host-local arrays (the
single-device arrays of a loop that every process runs on its own devices, as the experiments
do), so such leaves are saved as globally replicated arrays over all devices and restored back
onto the template's single-device sharding; global arrays (``global_batch``/``replicate_global``)
are saved as they are.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec

from sparsejax.core.validation import check_int

FINGERPRINT_FILE = "fingerprint.json"

_FINGERPRINT: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "sparsejax_checkpoint_fingerprint", default=None)


class CheckpointMismatch(ValueError):
    """Checkpoints on disk were written by another run (other config, seed or code version)."""


def active_fingerprint() -> Mapping[str, Any] | None:
    """The fingerprint set by :func:`use_fingerprint`, or ``None``."""
    return _FINGERPRINT.get()


@contextlib.contextmanager
def use_fingerprint(fingerprint: Mapping[str, Any] | None) -> Iterator[None]:
    """Inside the block, new :class:`LoopCheckpointer` s stamp and check ``fingerprint`` (a JSON dict)."""
    token = _FINGERPRINT.set(None if fingerprint is None else json.loads(json.dumps(fingerprint)))
    try:
        yield
    finally:
        _FINGERPRINT.reset(token)


def fingerprint_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two (nested) fingerprints."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += [f"{key}.{k}" for k in fingerprint_diff(va, vb)]
        elif va != vb:
            out.append(key)
    return out


def _host_local(leaf) -> bool:
    """A ``jax.Array`` of this process only, in a multi-process run (orbax cannot save it as it is)."""
    return jax.process_count() > 1 and isinstance(leaf, jax.Array) and leaf.is_fully_addressable


def _replicated() -> NamedSharding:
    from sparsejax.train.distributed import global_mesh

    return NamedSharding(global_mesh(), PartitionSpec())


def _to_global(state: Any) -> Any:
    """Host-local leaves as arrays replicated over every device of every process (multi-process only)."""
    if jax.process_count() == 1:
        return state
    sharding = _replicated()

    def convert(leaf):
        if not _host_local(leaf):
            return leaf
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = jax.random.key_data(leaf)
            return jax.random.wrap_key_data(convert(data), impl=jax.random.key_impl(leaf))
        return jax.make_array_from_process_local_data(sharding, np.asarray(leaf), leaf.shape)

    return jax.tree_util.tree_map(convert, state)


def _abstract(state: Any) -> Any:
    """Restore template: shape, dtype and sharding, host-local leaves replicated globally."""
    if jax.process_count() == 1:
        return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)
    sharding = _replicated()
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding) if _host_local(x)
        else ocp.utils.to_shape_dtype_struct(x), state)


def _to_local(restored: Any, template: Any) -> Any:
    """Back onto the template's host-local shardings (this process's copy of each replicated leaf)."""
    if jax.process_count() == 1:
        return restored
    return jax.tree_util.tree_map(
        lambda r, t: jax.device_put(r.addressable_data(0), t.sharding) if _host_local(t) else r, restored, template)


class LoopCheckpointer:
    """Save a training-loop state every ``every`` steps into ``directory`` (orbax).

    ``fingerprint`` (default: the active one, see :func:`use_fingerprint`) is written to
    ``directory/fingerprint.json``; existing checkpoints under a different or missing fingerprint
    raise :class:`CheckpointMismatch`.
    """

    def __init__(self, directory: str | Path, every: int, *, max_to_keep: int = 2, enabled: bool = True,
                 fingerprint: Mapping[str, Any] | None = None):
        self.every = check_int("every (checkpoint interval)", every, minimum=1)
        max_to_keep = check_int("max_to_keep", max_to_keep, minimum=1)
        self.enabled = bool(enabled)
        self.directory = Path(directory).absolute()
        self.tag = self.directory.name
        self.fingerprint = fingerprint if fingerprint is not None else active_fingerprint()
        self._manager = None
        if self.enabled:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ValueError(f"checkpoint directory {self.directory} cannot be created: "
                                 f"{err.strerror or err}") from err
            options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
            self._manager = ocp.CheckpointManager(self.directory, options=options)
            self._check_fingerprint()

    def _check_fingerprint(self) -> None:
        if self.fingerprint is None:
            return
        path = self.directory / FINGERPRINT_FILE
        stored = json.loads(path.read_text()) if path.exists() else None
        has_steps = self._manager.latest_step() is not None
        if has_steps and stored is None:
            raise CheckpointMismatch(f"{self.directory} holds checkpoints without a fingerprint (not written by "
                                     f"this run); delete them or use another output directory")
        if stored is not None and stored != json.loads(json.dumps(self.fingerprint)):
            if has_steps:
                differ = ", ".join(fingerprint_diff(stored, self.fingerprint)) or "?"
                raise CheckpointMismatch(f"{self.directory} holds checkpoints of another run ({differ} differ); "
                                         f"delete them or use another output directory")
        if stored != self.fingerprint and jax.process_index() == 0:
            tmp = path.with_name(f".{FINGERPRINT_FILE}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.fingerprint, indent=1, sort_keys=True))
            os.replace(tmp, path)

    def latest_step(self) -> int | None:
        """The newest saved step, or ``None``."""
        if self._manager is None:
            return None
        step = self._manager.latest_step()
        return None if step is None else int(step)

    def restore(self, state: Any) -> tuple[int, Any]:
        """Return ``(completed_steps, state)`` from the newest checkpoint, or ``(0, state)``."""
        step = self.latest_step()
        if step is None:
            return 0, state
        restored = self._manager.restore(step, args=ocp.args.StandardRestore(_abstract(state)))
        return step, _to_local(restored, state)

    def due(self, completed_steps: int) -> bool:
        """Whether :meth:`maybe_save` would save at ``completed_steps`` (without ``force``)."""
        return (self._manager is not None and completed_steps % self.every == 0
                and self._manager.latest_step() != completed_steps)

    def maybe_save(self, completed_steps: int, state: Any, *, force: bool = False) -> bool:
        """Save ``state`` when ``completed_steps`` is a multiple of ``every`` (or ``force``)."""
        if self._manager is None or not (force or completed_steps % self.every == 0):
            return False
        if self._manager.latest_step() == completed_steps:
            return False
        self._manager.save(completed_steps, args=ocp.args.StandardSave(_to_global(state)))
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
