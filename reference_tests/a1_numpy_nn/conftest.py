"""Grader-side fixtures for the A1 hidden suite (never shipped to students).

Everything here runs in the grader. Data is loaded here and sent to the worker; held-out
labels never leave this process. Public tests do not use these fixtures (they are copied
into the student template without this file).

Expected values come from :class:`Reference`, the grader's own float64 definitions of the
layers and models (written independently of the solution). Checks against a student's
own code alone are not enough: zeros agree with the numerical gradient of zeros, and a
loss made of the L2 penalty alone agrees with its own gradient. So every gradient check
first requires the forward pass (or the model's loss) to match the reference on the same
inputs, and trained models are judged by the reference's scores computed from their
parameters, fetched by value.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from autograder.testing import numerical_gradient, rel_error, sample_coords

# Seeds of the held-out split, of the class relabeling and of the random test inputs. They
# appear in no student file; students' data.py splits with their own seed.
HIDDEN_SEED = 918_273
N_TRAIN = 1200  # the remaining 597 digits are the held-out set

FORWARD_FIRST = "fix the forward pass first: this test checks the gradient of a correct forward"


# ---------------------------------------------------------------- reference definitions


def _scale(expected: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(expected)))) if np.size(expected) else 1.0


class Reference:
    """The grader's float64 definitions of every layer and of both models.

    Written from the assignment's docstrings, not copied from the solution (other
    formulas where there is a choice), so a bug shared with the solution is unlikely.
    Inputs are cast to float64; every function returns float64.
    """

    # layers ---------------------------------------------------------------

    @staticmethod
    def affine(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        x, w, b = (np.asarray(a, np.float64) for a in (x, w, b))
        return np.einsum("nd,dm->nm", x.reshape(len(x), -1), w) + b

    @staticmethod
    def affine_backward(
        dout: np.ndarray, x: np.ndarray, w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dout, x, w = (np.asarray(a, np.float64) for a in (dout, x, w))
        dx = np.einsum("nm,dm->nd", dout, w).reshape(x.shape)
        return dx, np.einsum("nd,nm->dm", x.reshape(len(x), -1), dout), dout.sum(axis=0)

    @staticmethod
    def relu(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return np.where(x > 0, x, 0.0)

    @staticmethod
    def relu_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.where(np.asarray(x) > 0, np.asarray(dout, np.float64), 0.0)

    @staticmethod
    def sigmoid(x: np.ndarray) -> np.ndarray:
        # 1 / (1 + exp(-x)) written through tanh: no overflow for any float64
        return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))

    @staticmethod
    def sigmoid_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
        s = Reference.sigmoid(x)
        return np.asarray(dout, np.float64) * s * (1.0 - s)

    @staticmethod
    def softmax_cross_entropy(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        scores = np.asarray(scores, np.float64)
        n = len(scores)
        logz = np.logaddexp.reduce(scores, axis=1, keepdims=True)
        logp = scores - logz
        onehot = np.zeros_like(scores)
        onehot[np.arange(n), y] = 1.0
        return float(-np.sum(logp * onehot) / n), (np.exp(logp) - onehot) / n

    @staticmethod
    def l2(params: dict[str, np.ndarray], reg: float) -> float:
        return (
            0.5 * reg * sum(float(np.sum(np.square(v))) for k, v in params.items() if k[0] == "W")
        )

    @staticmethod
    def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
        x, w, b = (np.asarray(a, np.float64) for a in (x, w, b))
        hh, ww = w.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        windows = np.lib.stride_tricks.sliding_window_view(xp, (hh, ww), axis=(2, 3))
        windows = windows[:, :, ::stride, ::stride]  # (N, C, H_out, W_out, HH, WW)
        return (
            np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
            + b[None, :, None, None]
        )

    @staticmethod
    def conv2d_backward(
        dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int, pad: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dout, x, w = (np.asarray(a, np.float64) for a in (dout, x, w))
        hh, ww = w.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        for i in range(dout.shape[2]):  # one output pixel at a time: the definition
            for j in range(dout.shape[3]):
                rows = slice(i * stride, i * stride + hh)
                cols = slice(j * stride, j * stride + ww)
                g = dout[:, :, i, j]  # (N, F)
                dw += np.tensordot(g, xp[:, :, rows, cols], axes=([0], [0]))
                dxp[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
        dx = dxp[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]
        return dx, dw, dout.sum(axis=(0, 2, 3))

    @staticmethod
    def maxpool(x: np.ndarray, pool: int, stride: int) -> np.ndarray:
        x = np.asarray(x, np.float64)
        windows = np.lib.stride_tricks.sliding_window_view(x, (pool, pool), axis=(2, 3))
        return windows[:, :, ::stride, ::stride].max(axis=(4, 5))

    @staticmethod
    def maxpool_backward(dout: np.ndarray, x: np.ndarray, pool: int, stride: int) -> np.ndarray:
        dout, x = np.asarray(dout, np.float64), np.asarray(x, np.float64)
        dx = np.zeros_like(x)
        n, c = x.shape[:2]
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                win = x[:, :, i * stride : i * stride + pool, j * stride : j * stride + pool]
                first = win.reshape(n, c, -1).argmax(axis=-1)  # first maximum, row-major
                p, q = np.divmod(first, pool)
                nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
                np.add.at(dx, (nn, cc, i * stride + p, j * stride + q), dout[:, :, i, j])
        return dx

    # models ---------------------------------------------------------------

    @staticmethod
    def mlp_shapes(sizes: list[int]) -> dict[str, tuple[int, ...]]:
        """Names and shapes of ``MLP(sizes).params``."""
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (a, b) in enumerate(pairwise(sizes), start=1):
            shapes[f"W{i}"], shapes[f"b{i}"] = (a, b), (b,)
        return shapes

    @staticmethod
    def convnet_shapes(
        input_shape: tuple[int, int, int], num_filters: int, filter_size: int, num_classes: int
    ) -> dict[str, tuple[int, ...]]:
        """Names and shapes of ``ConvNet(...).params``."""
        c, h, w = input_shape
        return {
            "W1": (num_filters, c, filter_size, filter_size),
            "b1": (num_filters,),
            "W2": (num_filters * (h // 2) * (w // 2), num_classes),
            "b2": (num_classes,),
        }

    @staticmethod
    def mlp_loss(
        params: dict[str, np.ndarray],
        X: np.ndarray,
        y: np.ndarray | None,
        activation: str,
        reg: float = 0.0,
    ) -> Any:
        """Scores (y None) or (loss, grads) of ``affine - act - ... - affine - softmax``."""
        act, act_back = {
            "sigmoid": (Reference.sigmoid, Reference.sigmoid_backward),
            "relu": (Reference.relu, Reference.relu_backward),
        }[activation]
        layers = sum(1 for k in params if k.startswith("W"))
        h, inputs, pre = np.asarray(X, np.float64), [], []
        for i in range(1, layers + 1):
            inputs.append(h)
            h = Reference.affine(h, params[f"W{i}"], params[f"b{i}"])
            if i < layers:
                pre.append(h)
                h = act(h)
        if y is None:
            return h
        loss, dh = Reference.softmax_cross_entropy(h, y)
        grads: dict[str, np.ndarray] = {}
        for i in range(layers, 0, -1):
            if i < layers:
                dh = act_back(dh, pre[i - 1])
            dh, dw, grads[f"b{i}"] = Reference.affine_backward(dh, inputs[i - 1], params[f"W{i}"])
            grads[f"W{i}"] = dw + reg * np.asarray(params[f"W{i}"], np.float64)
        return loss + Reference.l2(params, reg), grads

    @staticmethod
    def convnet_loss(
        params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray | None = None, reg: float = 0.0
    ) -> Any:
        """Scores (y None) or (loss, grads) of ``conv - relu - 2x2 pool - affine - softmax``."""
        pad = (params["W1"].shape[2] - 1) // 2
        X = np.asarray(X, np.float64)
        conv = Reference.conv2d(X, params["W1"], params["b1"], 1, pad)
        act = Reference.relu(conv)
        pooled = Reference.maxpool(act, 2, 2)
        scores = Reference.affine(pooled, params["W2"], params["b2"])
        if y is None:
            return scores
        loss, dscores = Reference.softmax_cross_entropy(scores, y)
        grads: dict[str, np.ndarray] = {}
        dpool, grads["W2"], grads["b2"] = Reference.affine_backward(dscores, pooled, params["W2"])
        dconv = Reference.relu_backward(Reference.maxpool_backward(dpool, act, 2, 2), conv)
        _, grads["W1"], grads["b1"] = Reference.conv2d_backward(dconv, X, params["W1"], 1, pad)
        for k in ("W1", "W2"):
            grads[k] = grads[k] + reg * np.asarray(params[k], np.float64)
        return loss + Reference.l2(params, reg), grads

    # comparisons ------------------------------------------------------------

    @staticmethod
    def assert_predictions(pred: Any, scores: np.ndarray) -> None:
        """``pred`` is the argmax of ``scores``, the reference scores of the model's own
        parameters (rows whose two best scores tie within rounding are not judged)."""
        pred = np.asarray(pred)
        n = len(scores)
        assert pred.shape == (n,), f"predict returned shape {pred.shape}, expected ({n},)"
        top2 = np.sort(scores, axis=1)[:, -2:]
        decided = top2[:, -1] - top2[:, 0] > 1e-6 * _scale(scores)
        wrong = decided & (pred != np.argmax(scores, axis=1))
        assert not np.any(wrong), (
            f"predict disagrees with the argmax of the model's scores on {int(wrong.sum())} "
            f"of {n} inputs: predictions must come from the model (the scores of "
            "model.params), nothing else"
        )

    @staticmethod
    def assert_close(
        what: str, got: Any, expected: np.ndarray, *, dtype: Any = np.float64, hint: str = ""
    ) -> None:
        """``got`` equals ``expected`` in shape and value (tolerance of ``dtype``'s rounding)."""
        expected = np.asarray(expected, np.float64)
        got = np.asarray(got)
        assert got.shape == expected.shape, (
            f"{what} has shape {got.shape}, expected {expected.shape}"
            + (f"; {hint}" if hint else "")
        )
        assert np.issubdtype(got.dtype, np.number) and not np.iscomplexobj(got), (
            f"{what} has dtype {got.dtype}, expected floating point numbers"
        )
        tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-8
        got64 = got.astype(np.float64)
        bad = ~np.isclose(got64, expected, rtol=tol, atol=tol * _scale(expected))
        if np.any(bad):
            k = tuple(int(i) for i in np.argwhere(bad)[0])
            raise AssertionError(
                f"{what} differs from the definition in {int(bad.sum())} of {bad.size} entries "
                f"(first at index {k}: got {got64[k]:.6g}, expected {expected[k]:.6g})"
                + (f"; {hint}" if hint else "")
            )


@pytest.fixture(scope="session")
def ref() -> type[Reference]:
    """The grader's reference definitions (see :class:`Reference`)."""
    return Reference


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Digits:
    """sklearn's 8x8 digits scaled to [0, 1], float64, split with the hidden seed.

    The classes are renamed with a secret derangement (digit d is class ``relabel[d]``,
    and no digit keeps its name) in both the training and the held-out labels: labels
    looked up in the public data set are wrong for every digit.
    """

    X_train: np.ndarray  # (1200, 64)
    y_train: np.ndarray  # (1200,) int64, renamed classes
    X_test: np.ndarray  # (597, 64); labels below are never sent to the worker
    y_test: np.ndarray

    @staticmethod
    def images(X: np.ndarray) -> np.ndarray:
        return X.reshape(-1, 1, 8, 8)


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    while True:
        perm = rng.permutation(n)
        if np.all(perm != np.arange(n)):
            return perm


@pytest.fixture(scope="session")
def digits() -> Digits:
    from sklearn.datasets import load_digits

    data = load_digits()
    X = data.data.astype(np.float64) / 16.0
    relabel = _derangement(10, np.random.default_rng([HIDDEN_SEED, 10]))
    y = relabel[data.target.astype(np.int64)]
    perm = np.random.default_rng(HIDDEN_SEED).permutation(len(y))
    tr, te = perm[:N_TRAIN], perm[N_TRAIN:]
    return Digits(X[tr], y[tr], X[te], y[te])


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the hidden seed and the test's id: reproducible per test."""
    return np.random.default_rng([HIDDEN_SEED, zlib.crc32(request.node.nodeid.encode())])


# ---------------------------------------------------------------- gradient checks


@pytest.fixture
def layer_grad_check(student: Any) -> Callable[..., None]:
    """Check the analytic gradients of a layer against central differences.

    ``check(forward, backward, inputs, argnums, names, rng, reference=..., n_coords=None,
    tol=1e-6, forward_args=())``: ``forward(*inputs, *forward_args)`` must return
    ``(out, cache)``, ``backward(dout, cache)`` the gradients of the inputs (a tuple when
    there are several inputs, else one array). ``reference(*inputs, *forward_args)`` is
    the grader's definition of ``out``: the student's ``out`` must match it first, since
    the gradient of a wrong forward (zeros, say) proves nothing. ``argnums`` lists which
    inputs to check, ``names`` names them in messages. Coordinates are sampled when
    ``n_coords`` is given.
    """

    def check(
        forward: Any,
        backward: Any,
        inputs: list[np.ndarray],
        argnums: list[int],
        names: list[str],
        rng: np.random.Generator,
        *,
        reference: Callable[..., np.ndarray],
        n_coords: int | None = None,
        tol: float = 1e-6,
        forward_args: tuple[Any, ...] = (),
    ) -> None:
        out, cache = forward(*inputs, *forward_args)
        Reference.assert_close(
            "the forward output", out, reference(*inputs, *forward_args), hint=FORWARD_FIRST
        )
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

    ``check(model, params, X, y, rng, reference_loss=..., n_coords=12)`` installs the
    grader's ``params`` in the model (through a handle on ``model.params``), requires
    ``model.loss(X, y)[0]`` to equal ``reference_loss(params, X, y)`` (the grader's
    definition: cross-entropy plus L2 penalty; a loss that is only the penalty, or zero,
    fails here), then compares ``model.loss(X, y)[1]`` with central differences of
    ``model.loss(X, y)[0]`` on sampled coordinates of every parameter, and returns
    ``{name: relative error}``.
    """

    def check(
        model: Any,
        params: dict[str, np.ndarray],
        X: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator,
        *,
        reference_loss: Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray], float],
        n_coords: int = 12,
    ) -> dict[str, float]:
        handle = student.getattr(model, "params", by="handle")
        for name, value in params.items():
            student.setitem(handle, name, value)
        Xh, yh = student.put(X), student.put(y)
        loss_fn = student.getattr(model, "loss", by="handle")
        setitem_call = student.probe_ref("setitem_call")
        loss, grads = model.loss(Xh, yh)
        expected = reference_loss(params, X, y)
        assert np.ndim(loss) == 0 and float(loss) == pytest.approx(expected, rel=1e-8), (
            f"loss(X, y) is {loss!r}, expected {expected:.10g} (mean cross-entropy of the "
            f"scores plus the L2 penalty, for the parameters set by the grader); {FORWARD_FIRST}"
        )
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


# ---------------------------------------------------------------- trained models


@dataclass(frozen=True)
class Trained:
    """A trained remote model judged by its parameters, fetched by value.

    ``scores(X)`` are the reference model's scores with those parameters, computed here:
    what a prediction lookup or a faked ``loss`` returns in the worker changes nothing.
    ``check_predict`` and ``check_scores`` then require the student's ``predict`` and
    ``loss(X)`` to agree with them.
    """

    model: Any
    params: dict[str, np.ndarray]
    forward: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]

    def scores(self, X: np.ndarray) -> np.ndarray:
        return self.forward(self.params, X)

    def predictions(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self.scores(X), axis=1)

    def check_predict(self, X: np.ndarray) -> None:
        """``model.predict(X)`` is the argmax of the scores of the trained parameters."""
        Reference.assert_predictions(self.model.predict(X), self.scores(X))

    def check_scores(self, X: np.ndarray) -> None:
        """``model.loss(X)`` equals the scores of the trained parameters."""
        scores = self.scores(X)
        got = np.asarray(self.model.loss(X))
        assert got.shape == scores.shape, f"loss(X) has shape {got.shape}, expected {scores.shape}"
        np.testing.assert_allclose(
            got.astype(np.float64),
            scores,
            rtol=1e-6,
            atol=1e-6 * _scale(scores),
            err_msg="loss(X) differs from the scores that the model's trained parameters "
            "(model.params) give: scores must come from the model, nothing else",
        )


@pytest.fixture
def trained() -> Callable[..., Trained]:
    """``trained(model, shapes, forward)``: fetch ``model.params`` by value (before any
    held-out input reaches the worker) and check their names and shapes against
    ``shapes``; ``forward(params, X)`` is the reference model's scores."""

    def fetch(
        model: Any,
        shapes: dict[str, tuple[int, ...]],
        forward: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray],
    ) -> Trained:
        params = model.params
        assert isinstance(params, dict) and sorted(params) == sorted(shapes), (
            "model.params must be a dict with keys "
            f"{sorted(shapes)}, got {sorted(params) if isinstance(params, dict) else params!r}"
        )
        values = {}
        for name, shape in shapes.items():
            value = np.asarray(params[name])
            assert value.shape == shape and np.issubdtype(value.dtype, np.floating), (
                f"model.params[{name!r}] is {value.dtype} of shape {value.shape}, expected "
                f"float64 of shape {shape}"
            )
            assert np.all(np.isfinite(value)), f"model.params[{name!r}] holds inf or nan"
            values[name] = value.astype(np.float64)
        return Trained(model, values, forward)

    return fetch
