"""Probes: public helpers that the worker runs next to student objects.

Tests call them with ``student.probe("name", ...)``; they run in the sandboxed worker and
return plain data. Nothing secret may live here: students can read this file.

Functions used as performance yardsticks are bound at import time (the zygote imports
this module before any student code), so a submission that monkeypatches numpy later
cannot slow the yardstick down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_einsum = np.einsum
_pad = np.pad
_sliding = np.lib.stride_tricks.sliding_window_view
_ascontig = np.ascontiguousarray

PROBES: dict[str, Callable[..., Any]] = {}
# Probes that call a function of the student's for the grader, and the position of that
# function among their arguments: students read its name (not the probe's) in messages.
STUDENT_CALLABLE: dict[str, int] = {}


def probe(name: str, *, calls: int | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a probe; ``calls`` is the position of the student function it calls, if any."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        PROBES[name] = fn
        if calls is not None:
            STUDENT_CALLABLE[name] = calls
        return fn

    return register


@probe("type_name")
def type_name(obj: Any) -> str:
    return type(obj).__qualname__


@probe("count_parameters")
def count_parameters(obj: Any) -> int:
    """Number of trainable scalars: torch modules, or a dict of numpy arrays."""
    if hasattr(obj, "parameters") and callable(obj.parameters):
        return int(sum(p.numel() for p in obj.parameters() if getattr(p, "requires_grad", True)))
    if isinstance(obj, dict):
        return int(sum(np.asarray(v).size for v in obj.values()))
    raise TypeError(f"count_parameters: cannot count parameters of {type(obj).__qualname__}")


@probe("setitem_call", calls=3)
def setitem_call(container: Any, key: Any, value: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``container[key] = value; return fn(*args)``: one step of a parameter perturbation
    (used with ``student.map`` for finite differences of a whole model)."""
    container[key] = value
    return fn(*args)


@probe("conv2d_yardstick")
def conv2d_yardstick(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """Vectorized NCHW cross-correlation (im2col through a strided view + einsum)."""
    xp = _pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2], w.shape[3]
    windows = _sliding(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    out = _einsum("nchwij,fcij->nfhw", windows, w, optimize=True)
    return _ascontig(out + b[None, :, None, None])


@probe("maxpool_yardstick")
def maxpool_yardstick(x: np.ndarray, pool: int = 2, stride: int = 2) -> np.ndarray:
    windows = _sliding(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride]
    return _ascontig(windows.max(axis=(4, 5)))
