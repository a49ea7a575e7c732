"""Scalar logging for training loops, through one writer interface.

Library loops (``fit`` and the experiments' own loops) call :func:`log_scalars`; it writes to the
writer of the active run (set by the experiment runner with :func:`use_writer`) and does nothing
outside a run, so library code stays usable in notebooks without any logging set-up.

A writer is any object with ``write_scalars(step: int, scalars: dict[str, float])``, ``flush()``
and ``close()``. :func:`make_writer` builds the runner's writers:

* ``"tensorboard"`` (the default): :class:`TensorBoardWriter`, TensorBoard event files written
  with **tensorboardX**, so ``tensorboard --logdir runs/`` shows every run. Why tensorboardX
  rather than ``clu.metric_writers`` (the Flax examples' convention): clu's TensorBoard writer
  goes through ``tf.summary`` (or tensorboard's own writer with TensorFlow absent), which pulls
  in TensorFlow or the whole tensorboard server stack and, with clu itself, etils/ml_collections
  and more; tensorboardX writes the same event-file format with only numpy and protobuf as
  dependencies, on any backend, without touching the accelerator. What we need from clu's
  interface (``write_scalars(step, dict)``, ``flush``, ``close``) is the interface here, so a
  ``clu.metric_writers`` writer can be passed to :func:`use_writer` unchanged.
* ``"wandb"``: TensorBoard as above plus :class:`WandbWriter`, Weights & Biases in **offline**
  mode (``wandb sync`` uploads later); it needs the optional extra ``sparsejax[wandb]`` and fails
  with a one-line :class:`TrackerUnavailable` when wandb is not installed.
* ``"none"``: no writer.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from pathlib import Path
from typing import Any, Iterator, Mapping

_ACTIVE: contextvars.ContextVar[Any] = contextvars.ContextVar("sparsejax_writer", default=None)

TRACKERS = ("tensorboard", "wandb", "none")


class TrackerUnavailable(RuntimeError):
    """The requested tracker's package is not installed (the message says what to install)."""


def active_writer() -> Any:
    """The writer of the active run, or ``None``."""
    return _ACTIVE.get()


@contextlib.contextmanager
def use_writer(writer: Any) -> Iterator[Any]:
    """Make ``writer`` the target of :func:`log_scalars` inside the ``with`` block."""
    token = _ACTIVE.set(writer)
    try:
        yield writer
    finally:
        _ACTIVE.reset(token)
        if writer is not None:
            writer.flush()


def log_scalars(step: int, scalars: Mapping[str, Any], *, prefix: str = "") -> None:
    """Log ``scalars`` (name -> number) at ``step`` to the active writer; a no-op without one.

    ``prefix`` namespaces the names (``prefix/name``), e.g. one prefix per method of a sweep.
    """
    writer = _ACTIVE.get()
    if writer is None:
        return
    head = f"{prefix}/" if prefix else ""
    writer.write_scalars(int(step), {f"{head}{k}": float(v) for k, v in scalars.items()})


class TensorBoardWriter:
    """TensorBoard event files in ``logdir`` (tensorboardX ``SummaryWriter``)."""

    def __init__(self, logdir: str | Path, *, flush_secs: int = 30):
        import logging

        from tensorboardX import SummaryWriter

        logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)  # NaN losses are reported by fit
        self.logdir = Path(logdir)
        self._writer = SummaryWriter(logdir=str(self.logdir), flush_secs=flush_secs)

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """One ``add_scalar`` per name (NaN/inf are written as they are: TensorBoard shows them)."""
        for name, value in scalars.items():
            self._writer.add_scalar(name, float(value), global_step=int(step))

    def flush(self) -> None:
        """Write pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


def _import_wandb():
    try:
        import wandb
    except ImportError as err:
        raise TrackerUnavailable("--tracker wandb needs wandb, which is not installed: "
                                 "pip install 'sparsejax[wandb]' (or use --tracker tensorboard)") from err
    return wandb


class WandbWriter:
    """Weights & Biases run in offline mode under ``logdir/wandb`` (never contacts the network).

    Loops restart their step count per method, while W&B wants one increasing step, so the step
    is logged as the metric ``train_step`` and used as every chart's x-axis.
    """

    def __init__(self, logdir: str | Path, *, project: str = "sparsejax", name: str | None = None,
                 config: Mapping[str, Any] | None = None):
        wandb = _import_wandb()
        self.logdir = Path(logdir)
        self._run = wandb.init(mode="offline", dir=str(self.logdir), project=project, name=name,
                               config=dict(config or {}), reinit="create_new")
        self._run.define_metric("train_step")
        self._run.define_metric("*", step_metric="train_step")

    @property
    def run_dir(self) -> Path:
        """The offline run folder (``wandb sync <run_dir>`` uploads it)."""
        return Path(self._run.dir).parent

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """Log ``scalars`` with ``train_step = step``."""
        self._run.log({**{k: float(v) for k, v in scalars.items()}, "train_step": int(step)})

    def flush(self) -> None:
        """W&B writes asynchronously; nothing to do."""

    def close(self) -> None:
        """Finish the run (writes the offline files)."""
        self._run.finish()


class MultiWriter:
    """Send every call to several writers."""

    def __init__(self, writers):
        self.writers = list(writers)

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        for writer in self.writers:
            writer.write_scalars(step, scalars)

    def flush(self) -> None:
        for writer in self.writers:
            writer.flush()

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


def make_writer(tracker: str, logdir: str | Path, *, name: str | None = None,
                config: Mapping[str, Any] | None = None):
    """The writer for ``tracker`` (one of :data:`TRACKERS`) logging under ``logdir``; ``None`` for ``"none"``."""
    if tracker not in TRACKERS:
        raise ValueError(f"tracker must be one of {', '.join(TRACKERS)}, got {tracker!r}")
    if tracker == "none":
        return None
    if tracker == "wandb":
        _import_wandb()  # fail before any event file is created
        return MultiWriter([TensorBoardWriter(logdir), WandbWriter(logdir, name=name, config=config)])
    return TensorBoardWriter(logdir)


def read_scalars(logdir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{name: [(step, value), ...]}`` from the TensorBoard event files under ``logdir`` (for tests)."""
    from tensorboardX.proto import event_pb2
    import struct

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(logdir).rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            record = data[pos + 12: pos + 12 + length]
            pos += 12 + length + 4
            event = event_pb2.Event()
            event.ParseFromString(record)
            for value in event.summary.value:
                v = value.simple_value if value.HasField("simple_value") else math.nan
                out.setdefault(value.tag, []).append((int(event.step), float(v)))
    return out
