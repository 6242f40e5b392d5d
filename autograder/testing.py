"""Grader-side numerical helpers for hidden tests.

These run in the trusted grader process and never touch student objects directly: the
function ``f`` given to :func:`numerical_gradient` is usually a remote function of the
``student`` fixture, which sends the perturbed input to the worker and brings the result
back by value.

Typical gradient check (CS231n style)::

    coords = sample_coords(x.shape, 20, rng)
    num = numerical_gradient(lambda x_: layers.affine_forward(x_, w, b)[0], x, dout,
                             coords=coords)
    assert rel_error(num[coords], dx[coords]) < 1e-7
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["PARITY_TOLERANCES", "Coords", "assert_device_parity", "numerical_gradient",
           "rel_error", "sample_coords"]

Coords = tuple[np.ndarray, ...]
"""Coordinates of some entries of an array, in numpy's advanced-indexing form
(one integer array per axis, all of the same length), so ``a[coords]`` selects them."""


def rel_error(a: ArrayLike, b: ArrayLike) -> float:
    """Largest relative error between two arrays, as in the CS231n notes.

    ``max(|a - b| / max(1e-8, |a| + |b|))`` over all entries, in float64. 0.0 for empty
    arrays. Raises ``ValueError`` when the shapes differ (broadcasting would hide a wrong
    shape) and returns ``inf`` when either side holds NaN or infinity.
    """
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape:
        raise ValueError(f"rel_error: shapes differ: {a64.shape} vs {b64.shape}")
    if a64.size == 0:
        return 0.0
    if not (np.all(np.isfinite(a64)) and np.all(np.isfinite(b64))):
        return float("inf")
    err = np.abs(a64 - b64) / np.maximum(1e-8, np.abs(a64) + np.abs(b64))
    return float(np.max(err))


def sample_coords(shape: tuple[int, ...], n: int, rng: np.random.Generator) -> Coords:
    """``n`` distinct random coordinates of an array of ``shape`` (all of them if fewer).

    The result indexes an array directly: ``a[sample_coords(a.shape, 10, rng)]`` is a 1-D
    array of 10 entries. Coordinates come in increasing flat (row-major) order. A 0-d
    array has one coordinate, the empty tuple ``()``, returned for any ``n >= 1``.
    """
    if n < 0:
        raise ValueError(f"sample_coords: n must be >= 0, got {n}")
    if len(shape) == 0:
        if n == 0:
            raise ValueError("sample_coords: a 0-d array has one coordinate; ask for n >= 1")
        return ()
    size = int(np.prod(shape, dtype=np.int64))
    k = min(n, size)
    flat = np.sort(rng.choice(size, size=k, replace=False)) if k else np.zeros(0, np.int64)
    return tuple(np.asarray(ix, dtype=np.intp) for ix in np.unravel_index(flat, shape))


def _all_coords(shape: tuple[int, ...]) -> Coords:
    if len(shape) == 0:
        return ()
    return tuple(
        np.asarray(ix, dtype=np.intp)
        for ix in np.unravel_index(np.arange(int(np.prod(shape, dtype=np.int64))), shape)
    )


def numerical_gradient(
    f: Callable[[np.ndarray], Any] | None,
    x: ArrayLike,
    df: ArrayLike | None = None,
    h: float = 1e-5,
    coords: Coords | None = None,
    *,
    f_batch: Callable[[list[np.ndarray]], list[Any]] | None = None,
    batch_size: int = 128,
) -> np.ndarray:
    """Central-difference gradient of ``sum(f(x) * df)`` with respect to ``x``, in float64.

    f: any callable taking an array shaped like ``x`` and returning an array or a scalar
        (often a remote student function wrapped in a lambda). It receives a fresh float64
        copy of ``x`` with one entry moved by ``+h`` or ``-h`` on every call, so it may
        keep or modify its argument.
    df: upstream gradient with the shape of ``f(x)``; ``None`` means ``f`` returns a
        scalar (a loss) and ``df = 1``.
    coords: entries of ``x`` to differentiate (see :func:`sample_coords`); ``None`` means
        every entry (``2 * x.size`` calls of ``f``).
    f_batch: instead of ``f``, a callable taking a list of perturbed inputs and returning
        the list of outputs (e.g. built on ``student.map``): one round trip to the worker
        per ``batch_size`` inputs instead of one per input.

    Returns a float64 array of the shape of ``x``: the estimates at ``coords`` and NaN
    elsewhere, so ``numerical_gradient(...)[coords]`` compares directly with an analytic
    ``dx[coords]``.
    """
    x64 = np.array(x, dtype=np.float64, copy=True)
    df64 = None if df is None else np.asarray(df, dtype=np.float64)
    where = _all_coords(x64.shape) if coords is None else coords
    grad = np.full(x64.shape, np.nan, dtype=np.float64)

    def objective(value: Any) -> float:
        out = np.asarray(value, dtype=np.float64)
        if df64 is None:
            if out.size != 1:
                raise ValueError(
                    f"numerical_gradient: f returned shape {out.shape} but df is None; "
                    "pass df with the shape of f(x) for non-scalar outputs"
                )
            return float(out.reshape(()))
        if out.shape != df64.shape:
            raise ValueError(
                f"numerical_gradient: f returned shape {out.shape}, df has shape {df64.shape}"
            )
        return float(np.sum(out * df64))

    if len(where) != x64.ndim:
        raise ValueError(
            f"numerical_gradient: coords index {len(where)} axes but x has {x64.ndim}; "
            "build them with sample_coords(x.shape, n, rng)"
        )
    if (f is None) == (f_batch is None):
        raise ValueError("numerical_gradient: give exactly one of f and f_batch")
    points: list[Any] = [()] if x64.ndim == 0 else list(zip(*where, strict=True))

    def perturbed(idx: Any, step: float) -> np.ndarray:
        moved = x64.copy()
        moved[idx] += step
        return moved

    for start in range(0, len(points), batch_size):
        chunk = points[start : start + batch_size]
        inputs = [perturbed(idx, s) for idx in chunk for s in (h, -h)]
        outputs = f_batch(inputs) if f_batch is not None else [f(v) for v in inputs]  # type: ignore[misc]
        if len(outputs) != len(inputs):
            raise ValueError(f"numerical_gradient: f_batch returned {len(outputs)} outputs "
                             f"for {len(inputs)} inputs")
        for i, idx in enumerate(chunk):
            f_plus, f_minus = objective(outputs[2 * i]), objective(outputs[2 * i + 1])
            grad[idx] = (f_plus - f_minus) / (2.0 * h)
    return grad


# (rtol, atol) per dtype of the results compared across devices: the same float32 sum on a
# GPU runs in another order, float16/bfloat16 keep 10/7 bits of mantissa.
PARITY_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-9, 1e-11), "complex128": (1e-9, 1e-11),
    "float32": (1e-4, 1e-5), "complex64": (1e-4, 1e-5),
    "float16": (1e-2, 1e-3), "bfloat16": (2e-2, 1e-2),
}


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """(path, array-like) pairs of a result: arrays, numbers, and lists/tuples/dicts of them."""
    if isinstance(value, dict):
        return [leaf for k in sorted(value) for leaf in _leaves(value[k], f"{path}[{k!r}]")]
    if isinstance(value, (list, tuple)):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")]
    return [(path, value)]


def assert_device_parity(student: Any, call: Callable[[str], Any], *,
                         devices: tuple[str, str] = ("cpu", "cuda"),
                         tolerances: dict[str, tuple[float, float]] | None = None) -> list[Any]:
    """Run ``call(device)`` on each device and require the same results within the
    tolerance of their dtype (``PARITY_TOLERANCES``). Returns the results.

    ``call`` does the test's work through the ``student`` fixture, building its inputs with
    ``student.tensor(array, device=device)`` (and moving a model with ``.to(device)``), so
    both devices get the same inputs. Before each call the worker is set to deterministic
    torch with TF32 off (the ``deterministic_torch`` probe). Mark the test
    ``@pytest.mark.gpu``: where the worker has no CUDA it is not run and not counted.
    The comparison is the grader's: results come back as arrays.
    """
    tol = {**PARITY_TOLERANCES, **(tolerances or {})}
    outs = []
    for device in devices:
        student.probe("deterministic_torch")
        outs.append(call(device))
    ref, other = (_leaves(o, "result") for o in outs)
    if [p for p, _ in ref] != [p for p, _ in other]:
        raise AssertionError(f"results differ in structure on {devices[0]} and {devices[1]}: "
                             f"{[p for p, _ in ref]} vs {[p for p, _ in other]}")
    for (path, a), (_, b) in zip(ref, other, strict=True):
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        if a_arr.shape != b_arr.shape or a_arr.dtype != b_arr.dtype:
            raise AssertionError(f"{path}: {devices[0]} gives {a_arr.dtype}{list(a_arr.shape)}, "
                                 f"{devices[1]} gives {b_arr.dtype}{list(b_arr.shape)}")
        rtol, atol = tol.get(a_arr.dtype.name, (0.0, 0.0))  # integers and bools: exact
        if not np.allclose(a_arr, b_arr, rtol=rtol, atol=atol, equal_nan=True):
            worst = float(np.max(np.abs(a_arr.astype(np.float64) - b_arr.astype(np.float64))))
            raise AssertionError(f"{path}: {devices[0]} and {devices[1]} disagree beyond "
                                 f"rtol={rtol:g}, atol={atol:g} for {a_arr.dtype} (largest "
                                 f"difference {worst:.3g})")
    return outs
