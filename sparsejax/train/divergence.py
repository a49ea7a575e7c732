"""Divergence detection: a NaN or inf loss stops training with an error instead of becoming a result.

Training loops call :func:`check_finite_loss` on the losses they fetch from the device (once per
step, or once per logged chunk). Studies of divergence opt out inside :func:`allow_nonfinite`
(the experiment runner's ``--allow-nonfinite`` flag).
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Any, Iterator

_ALLOW: contextvars.ContextVar[bool] = contextvars.ContextVar("sparsejax_allow_nonfinite", default=False)


class DivergenceError(FloatingPointError):
    """Raised when a loss or metric is NaN/inf; names the step, the value and the last checkpoint."""


def nonfinite_allowed() -> bool:
    """True inside :func:`allow_nonfinite`."""
    return _ALLOW.get()


@contextlib.contextmanager
def allow_nonfinite(enabled: bool = True) -> Iterator[None]:
    """Inside the block, :func:`check_finite_loss` lets NaN/inf values pass."""
    token = _ALLOW.set(bool(enabled))
    try:
        yield
    finally:
        _ALLOW.reset(token)


def check_finite_loss(step: int, value: Any, *, name: str = "loss", last_checkpoint: Any = None) -> None:
    """Raise :class:`DivergenceError` if ``value`` (a number) is NaN or inf, unless allowed.

    ``step`` is the step whose loss it is; ``last_checkpoint`` (a step number or path) is named in
    the message so the user knows where a resume would start.
    """
    value = float(value)
    if math.isfinite(value) or _ALLOW.get():
        return
    where = "no checkpoint was written" if last_checkpoint is None else f"last finite checkpoint: {last_checkpoint}"
    raise DivergenceError(f"{name} is {value} at step {step} ({where}); lower the learning rate, "
                          f"or pass --allow-nonfinite to study the divergence")
