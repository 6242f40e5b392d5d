"""Grader-side fixtures for the A3 hidden suite (never shipped to students).

Everything here runs in the grader. Phantoms are generated here (with the official
``phantoms.py`` of the support folder and seeds that appear in no student file) and only
images are sent to the worker; held-out masks and landmarks never leave this process.

Expected values come from :class:`Ref`, the grader's own float64 numpy definitions of the
blocks, the U-Net, the losses and the soft-argmax, written from the assignment's
docstrings (independently of the solution: sliding-window convolutions, an explicit
bilinear interpolation, batch statistics computed by hand). A module of the student is
checked by loading random weights and BatchNorm statistics chosen here into it (by the
names the README fixes) and comparing its output with the reference forward pass of the
same weights: zeros of the right shape, a missing ReLU or a skip concatenated in the
wrong order all fail.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

# Seeds of the hidden phantoms and of the random test inputs; they appear in no student file.
HIDDEN_SEED = 731_902
BN_EPS = 1e-5


# ---------------------------------------------------------------- the official generator


def _load_phantoms(support: str | None) -> ModuleType:
    here = Path(__file__).resolve().parent
    candidates = [Path(support) / "phantoms.py"] if support else []
    candidates.append(here.parent.parent / "solutions" / here.name / "phantoms.py")
    for path in candidates:
        if path.is_file():
            spec = importlib.util.spec_from_file_location("_a3_grader_phantoms", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # dataclasses look their module up
            spec.loader.exec_module(module)
            return module
    raise RuntimeError(f"phantoms.py not found in {[str(c) for c in candidates]}")


@pytest.fixture(scope="session")
def phantoms(pytestconfig: pytest.Config) -> ModuleType:
    """The official ``phantoms.py`` (support file), imported in the grader."""
    return _load_phantoms(pytestconfig.getoption("ag_support", default=None))


@pytest.fixture(scope="session")
def hidden_phantoms(phantoms: ModuleType) -> tuple[Any, Any]:
    """(training, held-out) phantoms of the convergence tests: 128 and 64 of 32x32 pixels,
    drawn with hidden seeds. Only the held-out images ever reach the worker."""
    train = phantoms.make_phantoms(128, 32, seed=HIDDEN_SEED + 1)
    test = phantoms.make_phantoms(64, 32, seed=HIDDEN_SEED + 2)
    return train, test


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the hidden seed and the test's id: reproducible per test."""
    return np.random.default_rng([HIDDEN_SEED, zlib.crc32(request.node.nodeid.encode())])


# ---------------------------------------------------------------- reference definitions


def _f64(*arrays: Any) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


class Ref:
    """The grader's float64 definitions (numpy only). Inputs are cast to float64."""

    # -- layers ---------------------------------------------------------------------------

    @staticmethod
    def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: int = 1,
               pad: int = 0, groups: int = 1) -> np.ndarray:
        """Cross-correlation as in ``nn.Conv2d`` (NCHW, weights (F, C/groups, k, k))."""
        x, w = _f64(x, w)
        k = w.shape[2]
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
        win = win[:, :, ::stride, ::stride]  # (N, C, Ho, Wo, k, k)
        cin, fout = x.shape[1] // groups, w.shape[0] // groups
        outs = []
        for g in range(groups):
            part = win[:, g * cin:(g + 1) * cin]
            wg = w[g * fout:(g + 1) * fout]
            outs.append(np.einsum("nchwij,fcij->nfhw", part, wg, optimize=True))
        out = np.concatenate(outs, axis=1)
        if b is not None:
            out = out + np.asarray(b, np.float64)[None, :, None, None]
        return out

    @staticmethod
    def conv_transpose2(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``nn.ConvTranspose2d(C, F, 2, stride=2)``: each input pixel paints a 2x2 patch."""
        x, w, b = _f64(x, w, b)
        n, _, h, wd = x.shape
        out = np.einsum("nchw,cfpq->nfhpwq", x, w).reshape(n, w.shape[1], 2 * h, 2 * wd)
        return out + b[None, :, None, None]

    @staticmethod
    def batchnorm(x: np.ndarray, state: dict[str, np.ndarray], prefix: str,
                  train: bool) -> np.ndarray:
        """BatchNorm2d: batch statistics (biased variance) in training mode, running
        statistics in evaluation mode."""
        (x,) = _f64(x)
        if train:
            mean = x.mean(axis=(0, 2, 3))
            var = x.var(axis=(0, 2, 3))
        else:
            mean, var = _f64(state[prefix + "running_mean"], state[prefix + "running_var"])
        gamma, beta = _f64(state[prefix + "weight"], state[prefix + "bias"])
        shape = (1, -1, 1, 1)
        return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + BN_EPS) * \
            gamma.reshape(shape) + beta.reshape(shape)

    @staticmethod
    def relu(x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, 0.0)

    @staticmethod
    def bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """``F.interpolate(x, size, mode="bilinear", align_corners=False)``."""
        (x,) = _f64(x)

        def axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
            src = np.maximum(src, 0.0)
            i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
            i1 = np.minimum(i0 + 1, n_in - 1)
            return i0, i1, src - i0

        r0, r1, lr = axis_weights(x.shape[2], size[0])
        c0, c1, lc = axis_weights(x.shape[3], size[1])
        rows = x[:, :, r0] * (1 - lr)[:, None] + x[:, :, r1] * lr[:, None]
        return rows[:, :, :, c0] * (1 - lc) + rows[:, :, :, c1] * lc

    # -- blocks ---------------------------------------------------------------------------

    @staticmethod
    def block_shapes(kind: str, cin: int, cout: int, stride: int,
                     prefix: str = "") -> dict[str, tuple[int, ...]]:
        """Names and shapes of the state_dict of a block (BatchNorm buffers included)."""
        def bn(name: str, c: int) -> dict[str, tuple[int, ...]]:
            return {f"{prefix}{name}.{p}": (c,) for p in
                    ("weight", "bias", "running_mean", "running_var")} | \
                {f"{prefix}{name}.num_batches_tracked": ()}

        if kind == "conv":
            return {f"{prefix}conv1.weight": (cout, cin, 3, 3), **bn("bn1", cout),
                    f"{prefix}conv2.weight": (cout, cout, 3, 3), **bn("bn2", cout)}
        if kind == "res":
            shapes = {**bn("bn1", cin), f"{prefix}conv1.weight": (cout, cin, 3, 3),
                      **bn("bn2", cout), f"{prefix}conv2.weight": (cout, cout, 3, 3)}
            if stride != 1 or cin != cout:
                shapes[f"{prefix}shortcut.weight"] = (cout, cin, 1, 1)
            return shapes
        if kind == "separable":
            return {f"{prefix}depthwise.weight": (cin, 1, 3, 3), **bn("bn1", cin),
                    f"{prefix}pointwise.weight": (cout, cin, 1, 1), **bn("bn2", cout)}
        raise ValueError(kind)

    @staticmethod
    def block(kind: str, state: dict[str, np.ndarray], x: np.ndarray, stride: int,
              train: bool = False, prefix: str = "") -> np.ndarray:
        s, bn, relu, conv = state, Ref.batchnorm, Ref.relu, Ref.conv2d
        p = prefix
        if kind == "conv":
            h = relu(bn(conv(x, s[p + "conv1.weight"], None, stride, 1), s, p + "bn1.", train))
            return relu(bn(conv(h, s[p + "conv2.weight"], None, 1, 1), s, p + "bn2.", train))
        if kind == "res":
            h = conv(relu(bn(x, s, p + "bn1.", train)), s[p + "conv1.weight"], None, stride, 1)
            h = conv(relu(bn(h, s, p + "bn2.", train)), s[p + "conv2.weight"], None, 1, 1)
            if p + "shortcut.weight" in s:
                return h + conv(x, s[p + "shortcut.weight"], None, stride, 0)
            return h + np.asarray(x, np.float64)
        if kind == "separable":
            cin = np.shape(x)[1]
            h = relu(bn(conv(x, s[p + "depthwise.weight"], None, stride, 1, groups=cin), s,
                        p + "bn1.", train))
            return relu(bn(conv(h, s[p + "pointwise.weight"], None, 1, 0), s, p + "bn2.", train))
        raise ValueError(kind)

    @staticmethod
    def block_params(kind: str, cin: int, cout: int, stride: int = 1) -> int:
        """Trainable parameters of a block (closed forms of the README)."""
        if kind == "conv":
            return 9 * cin * cout + 9 * cout * cout + 4 * cout
        if kind == "res":
            proj = cin * cout if (stride != 1 or cin != cout) else 0
            return 2 * cin + 9 * cin * cout + 2 * cout + 9 * cout * cout + proj
        if kind == "separable":
            return 9 * cin + 2 * cin + cin * cout + 2 * cout
        raise ValueError(kind)

    # -- U-Net --------------------------------------------------------------------------

    @staticmethod
    def unet_shapes(cin: int, cout: int, depth: int, width: int, upsample: str, block: str,
                    prefix: str = "") -> dict[str, tuple[int, ...]]:
        ch = [width * 2**k for k in range(depth + 1)]
        shapes = Ref.block_shapes(block, cin, ch[0], 1, f"{prefix}inc.")
        for k in range(depth):
            shapes |= Ref.block_shapes(block, ch[k], ch[k + 1], 2, f"{prefix}down.{k}.")
            if upsample == "transpose":
                shapes[f"{prefix}up.{k}.weight"] = (ch[k + 1], ch[k], 2, 2)
                shapes[f"{prefix}up.{k}.bias"] = (ch[k],)
                dec_in = 2 * ch[k]
            else:
                dec_in = ch[k + 1] + ch[k]
            shapes |= Ref.block_shapes(block, dec_in, ch[k], 1, f"{prefix}dec.{k}.")
        shapes[f"{prefix}head.weight"] = (cout, ch[0], 1, 1)
        shapes[f"{prefix}head.bias"] = (cout,)
        return shapes

    @staticmethod
    def unet_params(cin: int, cout: int, depth: int, width: int, upsample: str,
                    block: str) -> int:
        ch = [width * 2**k for k in range(depth + 1)]
        total = Ref.block_params(block, cin, ch[0]) + ch[0] * cout + cout
        for k in range(depth):
            total += Ref.block_params(block, ch[k], ch[k + 1], 2)
            if upsample == "transpose":
                total += ch[k + 1] * ch[k] * 4 + ch[k]
                total += Ref.block_params(block, 2 * ch[k], ch[k])
            else:
                total += Ref.block_params(block, ch[k + 1] + ch[k], ch[k])
        return total

    @staticmethod
    def unet(state: dict[str, np.ndarray], x: np.ndarray, depth: int, upsample: str,
             block: str, train: bool = False, prefix: str = "") -> np.ndarray:
        p = prefix
        h = Ref.block(block, state, x, 1, train, f"{p}inc.")
        skips = [h]
        for k in range(depth):
            h = Ref.block(block, state, h, 2, train, f"{p}down.{k}.")
            skips.append(h)
        for k in reversed(range(depth)):
            skip = skips[k]
            if upsample == "bilinear":
                h = Ref.bilinear(h, skip.shape[2:])
            else:
                h = Ref.conv_transpose2(h, state[f"{p}up.{k}.weight"], state[f"{p}up.{k}.bias"])
                h = h[:, :, :skip.shape[2], :skip.shape[3]]
            h = Ref.block(block, state, np.concatenate([h, skip], axis=1), 1, train,
                          f"{p}dec.{k}.")
        return Ref.conv2d(h, state[f"{p}head.weight"], state[f"{p}head.bias"])

    @staticmethod
    def random_state(shapes: dict[str, tuple[int, ...]], rng: np.random.Generator,
                     dtype: Any = np.float32) -> dict[str, np.ndarray]:
        """Random values for every entry but ``num_batches_tracked``: He-scaled weights,
        BatchNorm affine parameters and running statistics away from their defaults."""
        state = {}
        for name, shape in shapes.items():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "num_batches_tracked":
                continue
            if leaf == "weight" and len(shape) == 4:
                fan_in = shape[1] * shape[2] * shape[3]
                value = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
            elif leaf == "weight":
                value = rng.uniform(0.5, 1.5, shape)
            elif leaf == "running_var":
                value = rng.uniform(0.5, 2.0, shape)
            else:  # biases, running means
                value = 0.2 * rng.standard_normal(shape)
            state[name] = value.astype(dtype)
        return state

    # -- losses and landmarks -------------------------------------------------------------

    @staticmethod
    def softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
        (z,) = _f64(z)
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    @staticmethod
    def log_softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
        (z,) = _f64(z)
        m = z.max(axis=axis, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))

    @staticmethod
    def one_hot(masks: np.ndarray, c: int) -> np.ndarray:
        return (np.asarray(masks)[:, None] == np.arange(c)[None, :, None, None]).astype(float)

    @staticmethod
    def soft_dice(probs: np.ndarray, target: np.ndarray, eps: float = 1e-6) -> np.ndarray:
        p, t = _f64(probs, target)
        num = 2.0 * np.einsum("nchw,nchw->nc", p, t) + eps
        return num / (p.sum(axis=(2, 3)) + t.sum(axis=(2, 3)) + eps)

    @staticmethod
    def dice_loss(logits: np.ndarray, masks: np.ndarray, eps: float = 1e-6) -> float:
        c = np.shape(logits)[1]
        d = Ref.soft_dice(Ref.softmax(logits), Ref.one_hot(masks, c), eps)
        return float(1.0 - d[:, 1:].mean())

    @staticmethod
    def focal(logits: np.ndarray, masks: np.ndarray, gamma: float) -> float:
        logp = Ref.log_softmax(logits)
        logp_t = np.take_along_axis(logp, np.asarray(masks)[:, None], axis=1)[:, 0]
        return float(np.mean(-((1.0 - np.exp(logp_t)) ** gamma) * logp_t))

    @staticmethod
    def seg_loss(logits: np.ndarray, masks: np.ndarray, dice_weight: float = 0.5,
                 gamma: float = 0.0) -> float:
        return (1.0 - dice_weight) * Ref.focal(logits, masks, gamma) + \
            dice_weight * Ref.dice_loss(logits, masks)

    @staticmethod
    def soft_argmax(heatmaps: np.ndarray) -> np.ndarray:
        (z,) = _f64(heatmaps)
        n, k, h, w = z.shape
        p = Ref.softmax(z.reshape(n, k, h * w), axis=2).reshape(n, k, h, w)
        rows = np.einsum("nkhw,h->nk", p, np.arange(h, dtype=float))
        cols = np.einsum("nkhw,w->nk", p, np.arange(w, dtype=float))
        return np.stack([rows, cols], axis=-1)

    @staticmethod
    def landmark_loss(heatmaps: np.ndarray, landmarks: np.ndarray) -> float:
        d = Ref.soft_argmax(heatmaps) - np.asarray(landmarks, np.float64)
        return float(np.mean(np.sum(d**2, axis=-1)))

    # -- comparisons ------------------------------------------------------------------------

    @staticmethod
    def array(value: Any, what: str) -> np.ndarray:
        """``value`` as a numeric numpy array, or a failure naming ``what`` returned it."""
        if isinstance(value, np.ndarray | np.generic | float | int) and not isinstance(value, bool):
            arr = np.asarray(value)
            if np.issubdtype(arr.dtype, np.number):
                return arr
        raise AssertionError(f"{what} returned {type(value).__name__}"
                             f"{' of dtype ' + str(value.dtype) if hasattr(value, 'dtype') else ''}"
                             ", expected a tensor of numbers")

    @staticmethod
    def assert_close(what: str, got: Any, expected: Any, *, rtol: float = 1e-4,
                     atol: float = 1e-5, hint: str = "") -> None:
        """``got`` (a value the worker returned) equals ``expected`` in shape and value."""
        expected = np.asarray(expected, np.float64)
        got = Ref.array(got, what)
        suffix = f"; {hint}" if hint else ""
        assert got.shape == expected.shape, (
            f"{what} has shape {got.shape}, expected {expected.shape}{suffix}")
        got64 = got.astype(np.float64)
        assert np.all(np.isfinite(got64)), f"{what} holds inf or nan{suffix}"
        scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
        bad = ~np.isclose(got64, expected, rtol=rtol, atol=atol * scale)
        if np.any(bad):
            k = tuple(int(i) for i in np.argwhere(bad)[0])
            raise AssertionError(
                f"{what} differs from the definition in {int(bad.sum())} of {bad.size} entries "
                f"(first at index {k}: got {got64[k]:.6g}, expected {expected[k]:.6g}){suffix}")


@pytest.fixture(scope="session")
def ref() -> type[Ref]:
    """The grader's reference definitions (see :class:`Ref`)."""
    return Ref


@pytest.fixture
def load_random_state(student: Any) -> Any:
    """``load(module, shapes, rng, what)``: check that ``module``'s state_dict has exactly
    the names and shapes of ``shapes`` (the README's architecture), load random values
    chosen here into it, and return them (name -> float32 array)."""

    def load(module: Any, shapes: dict[str, tuple[int, ...]], rng: np.random.Generator,
             what: str) -> dict[str, np.ndarray]:
        got = student.probe("state_dict", module)
        got_shapes = {k: tuple(np.shape(v)) for k, v in got.items()}
        missing = sorted(set(shapes) - set(got_shapes))
        extra = sorted(set(got_shapes) - set(shapes))
        assert not missing and not extra, (
            f"{what}: its parameters and buffers do not follow the documented architecture: "
            f"missing {missing[:6]}{' ...' if len(missing) > 6 else ''}, unexpected "
            f"{extra[:6]}{' ...' if len(extra) > 6 else ''} (submodule names are part of "
            "the contract)")
        wrong = [f"{k}: {got_shapes[k]} (expected {shapes[k]})" for k in shapes
                 if got_shapes[k] != tuple(shapes[k])]
        assert not wrong, f"{what}: wrong shapes: {'; '.join(wrong[:4])}"
        state = Ref.random_state(shapes, rng)
        student.probe("load_state", module, state)
        return state

    return load


# ---------------------------------------------------------------- gradient checks


@pytest.fixture
def autograd_check(student: Any) -> Any:
    """``check(fn, x, rest, rng, what, dout=None, n_coords=24, tol=1e-6)``: autograd's
    gradient of ``fn(x, *rest)`` with respect to ``x`` (float64, through the
    ``input_grad`` probe) against central differences computed here by calling ``fn`` on
    perturbed copies of ``x`` in the worker (``student.map``, one round trip per batch).
    The error is the largest difference over the largest entry. ``rest`` holds numpy arrays (sent as float64 tensors; integer arrays keep their
    dtype) or other values. ``dout`` weights a non-scalar output. Returns the analytic
    gradient."""

    def send(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return student.tensor(value, "float64" if value.dtype.kind == "f" else None)
        return value

    def check(fn: Any, x: np.ndarray, rest: tuple[Any, ...], rng: np.random.Generator,
              what: str, *, dout: np.ndarray | None = None, n_coords: int = 24,
              tol: float = 1e-6) -> np.ndarray:
        from autograder.testing import numerical_gradient, sample_coords

        args = [send(v) for v in rest]
        grad = student.probe("input_grad", fn, student.tensor(x, "float64"), *args, dout=dout)
        assert grad is not None, (
            f"{what}: autograd gave no gradient for its input: the result is not "
            "connected to it (.detach(), .item(), numpy, argmax or a threshold on the way?)")
        grad = Ref.array(grad, f"the gradient of {what}")
        assert grad.shape == x.shape, f"the gradient of {what} has shape {grad.shape}"

        def f_batch(values: list[np.ndarray]) -> list[Any]:
            return student.map(fn, [(student.tensor(v, "float64"), *args) for v in values])

        coords = sample_coords(x.shape, n_coords, rng)
        numeric = numerical_gradient(None, x, dout, coords=coords, f_batch=f_batch)
        # Error relative to the largest entry (not entry by entry): the Dice of an absent
        # class has gradients of size eps, which differences cannot resolve.
        num, ana = numeric[coords], grad[coords].astype(np.float64)
        scale = max(float(np.max(np.abs(num))), float(np.max(np.abs(ana))), 1e-12)
        err = float(np.max(np.abs(num - ana))) / scale if np.all(np.isfinite(ana)) else np.inf
        assert err < tol, (
            f"{what}: autograd's gradient differs from central differences (relative error "
            f"{err:.2e}, tolerance {tol:g}): part of the computation is cut off from the graph "
            "(.detach(), .data, .item(), numpy) or not differentiable")
        return grad

    return check
