"""Scalar logging for training loops, through one writer interface.

Library loops (``fit`` and the experiments' own loops) call :func:`log_scalars`; it writes to the
writer of the active run (set by the experiment runner with :func:`use_writer`) and does nothing
outside a run, so library code stays usable in notebooks without any logging set-up.

A writer is any object with ``write_scalars(step: int, scalars: dict[str, float])`` and ``flush()``.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator, Mapping

_ACTIVE: contextvars.ContextVar[Any] = contextvars.ContextVar("sparsejax_writer", default=None)


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
