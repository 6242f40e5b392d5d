"""Grader-side fixtures for the A2 hidden suite (never shipped to students).

Everything here runs in the grader. Data is loaded here and sent to the worker; held-out
labels never leave this process. Public tests do not use these fixtures (they are copied
into the student template without this file).

Expected values come from :class:`Reference`, the grader's own float64 numpy definitions
of the autograd functions and of both models, written from the assignment's text and
independently of the solution. A model is judged by its parameters and buffers, fetched
by value with the generic ``state_dict`` probe: the reference computes its scores here,
so what the worker's ``forward`` returns changes no verdict unless it also agrees with
them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

# Seeds of the held-out split, of the class relabeling and of the random inputs. They
# appear in no student file.
HIDDEN_SEED = 271_828
N_TRAIN = 1200  # the remaining 597 digits are the held-out set
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def _scale(expected: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(expected)))) if np.size(expected) else 1.0


@dataclass(frozen=True)
class Layer:
    """One parametrized layer of a model's state dict: ``kind`` is "linear", "conv" or
    "bn"; ``tensors`` its entries by short name (weight, bias, running_mean, ...)."""

    prefix: str
    kind: str
    tensors: dict[str, np.ndarray]


class Reference:
    """The grader's float64 definitions (numpy; inputs cast to float64)."""

    # autograd functions ------------------------------------------------------

    @staticmethod
    def sigmoid(x: np.ndarray) -> np.ndarray:
        return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))

    @staticmethod
    def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        out = np.einsum("ni,oi->no", np.asarray(x, np.float64), np.asarray(w, np.float64))
        return out if b is None else out + np.asarray(b, np.float64)

    @staticmethod
    def log_softmax(scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores, np.float64)
        return s - np.logaddexp.reduce(s, axis=1, keepdims=True)

    @staticmethod
    def cross_entropy(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean cross-entropy and its gradient with respect to the scores."""
        logp = Reference.log_softmax(scores)
        n = len(logp)
        onehot = np.eye(logp.shape[1])[np.asarray(y)]
        return float(-np.sum(logp * onehot) / n), (np.exp(logp) - onehot) / n

    # models: structure ---------------------------------------------------------

    @staticmethod
    def layers(state: dict[str, np.ndarray]) -> list[Layer]:
        """The parametrized layers of a state dict, in registration order."""
        groups: dict[str, dict[str, np.ndarray]] = {}
        for key, value in state.items():
            prefix, _, short = key.rpartition(".")
            groups.setdefault(prefix, {})[short] = np.asarray(value)
        found = []
        for prefix, tensors in groups.items():
            if "running_mean" in tensors:
                kind = "bn"
            elif "weight" in tensors and tensors["weight"].ndim == 4:
                kind = "conv"
            elif "weight" in tensors and tensors["weight"].ndim == 2:
                kind = "linear"
            else:
                kind = "other"
            found.append(Layer(prefix, kind, tensors))
        return found

    @staticmethod
    def mlp_shapes(in_features: int, hidden: Sequence[int], classes: int) -> list[tuple]:
        sizes = [in_features, *hidden, classes]
        return [("linear", (b, a), (b,)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]

    @staticmethod
    def cnn_shapes(cin: int, classes: int, channels: Sequence[int], k: int) -> list[tuple]:
        shapes: list[tuple] = []
        prev = cin
        for c in channels:
            shapes += [("conv", (c, prev, k, k), None), ("bn", (c,), None),
                       ("conv", (c, c, k, k), None), ("bn", (c,), None)]
            prev = c
        return [*shapes, ("linear", (classes, prev), (classes,))]

    @staticmethod
    def check_structure(what: str, state: dict[str, np.ndarray], expected: list[tuple]) -> list[Layer]:
        """The state dict holds exactly the expected layers, in order, of the expected
        shapes (convolutions without bias); returns them."""
        layers = [layer for layer in Reference.layers(state) if layer.kind != "other"]
        others = [layer.prefix for layer in Reference.layers(state) if layer.kind == "other"]
        assert not others, f"{what} has unexpected parameters or buffers under {others}"
        got = [(layer.kind, tuple(layer.tensors["weight"].shape)) for layer in layers]
        want = [(kind, shape) for kind, shape, _ in expected]
        assert got == want, (
            f"{what}: the layers with parameters, in registration order, are {got}; expected "
            f"{want} (register layers in the order the input goes through them)")
        for layer, (kind, _shape, bias) in zip(layers, expected, strict=True):
            if kind == "conv":
                assert "bias" not in layer.tensors, (
                    f"{what}: convolution {layer.prefix} has a bias; use bias=False "
                    "(BatchNorm follows)")
            if kind == "linear":
                assert "bias" in layer.tensors and layer.tensors["bias"].shape == bias, (
                    f"{what}: linear layer {layer.prefix} needs a bias of shape {bias}")
            for short, value in layer.tensors.items():
                assert value.dtype.kind != "f" or np.all(np.isfinite(value)), (
                    f"{what}: {layer.prefix}.{short} holds nan or inf (did training diverge?)")
        return layers

    # models: forward -----------------------------------------------------------

    @staticmethod
    def mlp_forward(layers: list[Layer], X: np.ndarray) -> np.ndarray:
        """Eval-mode scores of the MLP with these linear layers."""
        h = np.asarray(X, np.float64).reshape(len(X), -1)
        for i, layer in enumerate(layers):
            h = Reference.linear(h, layer.tensors["weight"], layer.tensors["bias"])
            if i < len(layers) - 1:
                h = np.maximum(h, 0.0)
        return h

    @staticmethod
    def mlp_backward(layers: list[Layer], X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """(loss, scores, [(dW, db) per layer]) of the mean cross-entropy."""
        hs = [np.asarray(X, np.float64).reshape(len(X), -1)]
        for i, layer in enumerate(layers):
            z = Reference.linear(hs[-1], layer.tensors["weight"], layer.tensors["bias"])
            hs.append(np.maximum(z, 0.0) if i < len(layers) - 1 else z)
        loss, d = Reference.cross_entropy(hs[-1], y)
        grads = []
        for i in range(len(layers) - 1, -1, -1):
            w = np.asarray(layers[i].tensors["weight"], np.float64)
            grads.append((d.T @ hs[i], d.sum(axis=0)))
            d = (d @ w) * (hs[i] > 0)
        return loss, hs[-1], grads[::-1]

    @staticmethod
    def conv2d(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
        k = w.shape[2]
        xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        windows = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
        windows = windows[:, :, ::stride, ::stride]  # (N, C, Ho, Wo, k, k)
        return np.einsum("nchwij,fcij->nfhw", windows, np.asarray(w, np.float64), optimize=True)

    @staticmethod
    def batchnorm(x: np.ndarray, t: dict[str, np.ndarray], train: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Output and updated running statistics (unchanged in eval mode)."""
        rm, rv = np.asarray(t["running_mean"], np.float64), np.asarray(t["running_var"], np.float64)
        if train:
            mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
            m = x.size / x.shape[1]
            new = {"running_mean": (1 - BN_MOMENTUM) * rm + BN_MOMENTUM * mean,
                   "running_var": (1 - BN_MOMENTUM) * rv + BN_MOMENTUM * var * m / max(m - 1, 1)}
        else:
            mean, var, new = rm, rv, {"running_mean": rm, "running_var": rv}
        xhat = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + BN_EPS)
        w, b = (np.asarray(t[k], np.float64)[None, :, None, None] for k in ("weight", "bias"))
        return xhat * w + b, new

    @staticmethod
    def cnn_forward(layers: list[Layer], X: np.ndarray, train: bool = False) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
        """Scores of the SmallCNN with these layers (conv, bn, conv, bn per block, then the
        linear head) and the running statistics of each BatchNorm after the pass."""
        h = np.asarray(X, np.float64)
        stats = []
        blocks = (len(layers) - 1) // 4
        for b in range(blocks):
            c1, n1, c2, n2 = layers[4 * b: 4 * b + 4]
            for j, (conv, bn) in enumerate(((c1, n1), (c2, n2))):
                w = conv.tensors["weight"]
                stride = 2 if (b > 0 and j == 0) else 1
                h = Reference.conv2d(h, w, stride, w.shape[2] // 2)
                h, new = Reference.batchnorm(h, bn.tensors, train)
                stats.append(new)
                h = np.maximum(h, 0.0)
        head = layers[-1]
        return Reference.linear(h.mean(axis=(2, 3)), head.tensors["weight"], head.tensors["bias"]), stats

    # comparisons ---------------------------------------------------------------

    @staticmethod
    def assert_close(what: str, got: Any, expected: Any, *, rtol: float = 1e-5, hint: str = "") -> None:
        """``got`` has the shape of ``expected`` and its values within ``rtol`` (relative
        to the largest expected magnitude, at least 1)."""
        expected = np.asarray(expected, np.float64)
        got = np.asarray(got)
        assert got.shape == expected.shape, (
            f"{what} has shape {got.shape}, expected {expected.shape}" + (f"; {hint}" if hint else ""))
        assert np.issubdtype(got.dtype, np.floating), f"{what} has dtype {got.dtype}, expected floats"
        got64 = got.astype(np.float64)
        bad = ~np.isclose(got64, expected, rtol=rtol, atol=rtol * _scale(expected))
        if np.any(bad):
            k = tuple(int(i) for i in np.argwhere(bad)[0])
            raise AssertionError(
                f"{what} differs from the definition in {int(bad.sum())} of {bad.size} entries "
                f"(first at index {k}: got {got64[k]:.10g}, expected {expected[k]:.10g})"
                + (f"; {hint}" if hint else ""))


@pytest.fixture(scope="session")
def ref() -> type[Reference]:
    """The grader's reference definitions (see :class:`Reference`)."""
    return Reference


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Digits:
    """sklearn's 8x8 digits in [0, 1] as float32 images (N, 1, 8, 8), split with the
    hidden seed, classes renamed by a secret derangement (no digit keeps its name), so
    labels looked up in the public data set are wrong for every digit."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray  # labels below are never sent to the worker
    y_test: np.ndarray


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    while True:
        perm = rng.permutation(n)
        if np.all(perm != np.arange(n)):
            return perm


def load_hidden_digits() -> Digits:
    from sklearn.datasets import load_digits

    data = load_digits()
    X = (data.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    relabel = _derangement(10, np.random.default_rng([HIDDEN_SEED, 10]))
    y = relabel[data.target.astype(np.int64)]
    perm = np.random.default_rng(HIDDEN_SEED).permutation(len(y))
    tr, te = perm[:N_TRAIN], perm[N_TRAIN:]
    return Digits(X[tr], y[tr], X[te], y[te])


@pytest.fixture(scope="session")
def digits() -> Digits:
    return load_hidden_digits()


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the hidden seed and the test's id: reproducible per test."""
    return np.random.default_rng([HIDDEN_SEED, zlib.crc32(request.node.nodeid.encode())])


# ---------------------------------------------------------------- closed forms


def onecycle_lr(step: int, max_lr: float, total: int, pct_start: float = 0.3,
                div_factor: float = 25.0, final_div_factor: float = 1e4) -> float:
    """OneCycleLR's learning rate at ``step`` (two phases, cosine annealing), from its
    definition: up from max_lr / div_factor to max_lr over the first pct_start of the
    steps, then down to max_lr / div_factor / final_div_factor at the last step."""
    initial = max_lr / div_factor
    final = initial / final_div_factor
    peak = pct_start * total - 1
    if step <= peak:
        start, end, frac = initial, max_lr, step / peak
    else:
        start, end, frac = max_lr, final, (step - peak) / (total - 1 - peak)
    return end + (start - end) / 2.0 * (1.0 + math.cos(math.pi * frac))


# ---------------------------------------------------------------- the training recipe


RECIPES: dict[str, dict[str, Any]] = {
    # full-size digits, small models, few epochs: seconds on one CPU thread
    "mlp": {"epochs": 8, "batch": 64, "optimizer": "adam", "lr": 1e-2, "scheduler": "none"},
    "cnn": {"epochs": 8, "batch": 64, "optimizer": "adam", "lr": 1e-2, "scheduler": "onecycle",
            "max_lr": 2e-2},
}
N_VAL = 200  # the last 200 training digits validate; the held-out digits are never sent


def train_recipe(student: Any, digits: Digits, kind: str, seed: int) -> tuple[Any, Any]:
    """Train the MLP (``kind="mlp"``) or the SmallCNN (``"cnn"``, with RandomShift
    augmentation and OneCycleLR) in the worker with the submission's own data, optimizer,
    scheduler and fit; returns (model handle, history). The grader's ``deterministic_torch``
    probe seeds torch before the model is built."""
    models, data, train = (student.module(m) for m in ("models", "data", "train"))
    student.probe("deterministic_torch", seed)
    return run_recipe(models, data, train, student.tensor,
                      lambda s: student.probe("torch_generator", s), digits, kind, seed)


def run_recipe(models: Any, data: Any, train: Any, tensor: Any, generator: Any,
               digits: Digits, kind: str, seed: int) -> tuple[Any, Any]:
    """The recipe itself, written against modules (remote handles in the grader, the
    solution's modules in bench/thresholds_a2.py); torch must already be seeded."""
    r = RECIPES[kind]
    n = len(digits.y_train) - N_VAL
    X, y = digits.X_train, digits.y_train
    if kind == "mlp":
        model = models.MLP(64, [64], 10)
        transform = None
    else:
        model = models.SmallCNN()
        transform = data.Compose([data.RandomShift(1, generator(seed + 1))])
    train_ds = data.DigitsDataset(tensor(X[:n]), tensor(y[:n]), transform)
    val_ds = data.DigitsDataset(tensor(X[n:]), tensor(y[n:]))
    train_loader = data.make_loader(train_ds, r["batch"], shuffle=True, seed=seed)
    val_loader = data.make_loader(val_ds, 256)
    opt = train.make_optimizer(model, r["optimizer"], lr=r["lr"])
    steps = -(-n // r["batch"])
    sched = train.make_scheduler(opt, r["scheduler"], epochs=r["epochs"], steps_per_epoch=steps,
                                 max_lr=r.get("max_lr", r["lr"]))
    hist = train.fit(model, train_loader, val_loader, opt, epochs=r["epochs"], scheduler=sched,
                     device="cpu", seed=seed)
    return model, hist


@pytest.fixture(scope="session")
def recipe() -> Any:
    """:func:`train_recipe`: ``recipe(student, digits, kind, seed) -> (model, history)``."""
    return train_recipe


@pytest.fixture(scope="session")
def onecycle() -> Any:
    """:func:`onecycle_lr`, the closed form of OneCycleLR's rate."""
    return onecycle_lr
