"""Grader-side fixtures for the A1 hidden suite (never shipped to students).

Everything here runs in the grader. Data is loaded here and sent to the worker; held-out
labels never leave this process. Public tests do not use these fixtures (they are copied
into the student template without this file).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from autograder.testing import numerical_gradient, rel_error, sample_coords

# Seeds of the held-out split and of the random test inputs. They appear in no student
# file; students' data.py splits with their own seed.
HIDDEN_SEED = 918_273
N_TRAIN = 1200  # the remaining 597 digits are the held-out set


@dataclass(frozen=True)
class Digits:
    """sklearn's 8x8 digits scaled to [0, 1], float64, split with the hidden seed."""

    X_train: np.ndarray  # (1200, 64)
    y_train: np.ndarray  # (1200,) int64
    X_test: np.ndarray  # (597, 64); labels below are never sent to the worker
    y_test: np.ndarray

    @staticmethod
    def images(X: np.ndarray) -> np.ndarray:
        return X.reshape(-1, 1, 8, 8)


@pytest.fixture(scope="session")
def digits() -> Digits:
    from sklearn.datasets import load_digits

    data = load_digits()
    X = data.data.astype(np.float64) / 16.0
    y = data.target.astype(np.int64)
    perm = np.random.default_rng(HIDDEN_SEED).permutation(len(y))
    tr, te = perm[:N_TRAIN], perm[N_TRAIN:]
    return Digits(X[tr], y[tr], X[te], y[te])


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the hidden seed and the test's id: reproducible per test."""
    return np.random.default_rng([HIDDEN_SEED, zlib.crc32(request.node.nodeid.encode())])


@pytest.fixture
def layer_grad_check(student: Any) -> Callable[..., None]:
    """Check the analytic gradients of a layer against central differences.

    ``check(forward, backward, inputs, argnums, names, rng, n_coords=None, tol=1e-6,
    forward_args=())``: ``forward(*inputs, *forward_args)`` must return ``(out, cache)``,
    ``backward(dout, cache)`` the gradients of the inputs (a tuple when there are several
    inputs, else one array). ``argnums`` lists which inputs to check, ``names`` names them
    in messages. Coordinates are sampled when ``n_coords`` is given.
    """

    def check(
        forward: Any,
        backward: Any,
        inputs: list[np.ndarray],
        argnums: list[int],
        names: list[str],
        rng: np.random.Generator,
        n_coords: int | None = None,
        tol: float = 1e-6,
        forward_args: tuple[Any, ...] = (),
    ) -> None:
        out, cache = forward(*inputs, *forward_args)
        out = np.asarray(out)
        dout = rng.standard_normal(out.shape)
        grads = backward(dout, cache)
        if len(inputs) == 1:
            grads = (grads,)
        assert isinstance(grads, tuple | list) and len(grads) == len(inputs), (
            f"backward returned {len(grads)} gradients, expected {len(inputs)}"
        )
        for k, name in zip(argnums, names, strict=True):
            analytic = np.asarray(grads[k], dtype=np.float64)
            assert analytic.shape == inputs[k].shape, (
                f"d{name} has shape {analytic.shape}, expected {inputs[k].shape}"
            )

            def f_batch(values: list[np.ndarray], k: int = k) -> list[Any]:
                # One round trip per batch: the worker runs forward on every perturbation.
                calls = []
                for value in values:
                    args = list(inputs)
                    args[k] = value
                    calls.append((*args, *forward_args))
                return [out for out, _cache in student.map(forward, calls)]

            coords = None if n_coords is None else sample_coords(inputs[k].shape, n_coords, rng)
            numeric = numerical_gradient(None, inputs[k], dout, coords=coords, f_batch=f_batch)
            sel = (slice(None),) if coords is None else coords
            err = rel_error(numeric[sel], analytic[sel])
            assert err < tol, (
                f"d{name}: relative error {err:.2e} against numerical gradient (tolerance {tol:g})"
            )

    return check


@pytest.fixture
def model_grad_check(student: Any) -> Callable[..., dict[str, float]]:
    """Gradient check of a whole remote model (MLP or ConvNet).

    ``check(model, params, X, y, rng, n_coords=12)`` installs the grader's ``params`` in
    the model (through a handle on ``model.params``), compares ``model.loss(X, y)[1]`` with
    central differences of ``model.loss(X, y)[0]`` on sampled coordinates of every
    parameter, and returns ``{name: relative error}``.
    """

    def check(
        model: Any,
        params: dict[str, np.ndarray],
        X: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator,
        n_coords: int = 12,
    ) -> dict[str, float]:
        handle = student.getattr(model, "params", by="handle")
        for name, value in params.items():
            student.setitem(handle, name, value)
        Xh, yh = student.put(X), student.put(y)
        loss_fn = student.getattr(model, "loss", by="handle")
        setitem_call = student.probe_ref("setitem_call")
        _, grads = model.loss(Xh, yh)
        assert isinstance(grads, dict), (
            f"loss(X, y) must return (loss, grads dict), got {type(grads)}"
        )
        assert sorted(grads) == sorted(params), (
            f"grads has keys {sorted(grads)}, expected the keys of params {sorted(params)}"
        )
        errors = {}
        for name, value in params.items():
            analytic = np.asarray(grads[name], dtype=np.float64)
            assert analytic.shape == value.shape, (
                f"grads[{name!r}] has shape {analytic.shape}, expected {value.shape}"
            )

            def f_batch(values: list[np.ndarray], name: str = name) -> list[Any]:
                # Each call sets params[name] to one perturbation, then evaluates the loss.
                calls = [(handle, name, v, loss_fn, Xh, yh) for v in values]
                return [loss for loss, _grads in student.map(setitem_call, calls)]

            coords = sample_coords(value.shape, n_coords, rng)
            numeric = numerical_gradient(None, value, None, coords=coords, f_batch=f_batch)
            student.setitem(handle, name, value)
            errors[name] = rel_error(numeric[coords], analytic[coords])
        return errors

    return check
