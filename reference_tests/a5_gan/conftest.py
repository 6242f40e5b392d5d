"""Grader-side fixtures for the A5 hidden suite (never shipped to students).

Everything here runs in the grader. Expected values come from :class:`Ref`, closed forms
in float64 numpy written from the assignment's docstrings (stable softplus, the gradient
of linear and one-hidden-layer tanh critics in closed form). Training data (points of a
mixture of Gaussians, phantoms) is drawn here with seeds that appear in no student file;
the generated samples come back as plain arrays and are scored here: distances to the
mixture's modes, and the grader's own copy of the shipped segmenter (official
``segmenter.py`` and ``segmenter.safetensors`` of the support folder, weights read with
safetensors, nothing unpickled) for the generated phantoms.
"""

from __future__ import annotations

import importlib.util
import sys
import zlib
from collections import deque
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

HIDDEN_SEED = 580_213


def _support_dir(pytestconfig: pytest.Config) -> list[Path]:
    here = Path(__file__).resolve().parent
    support = pytestconfig.getoption("ag_support", default=None)
    return ([Path(support)] if support else []) + [here.parent.parent / "solutions" / here.name]


def _load(pytestconfig: pytest.Config, filename: str, name: str) -> ModuleType:
    for folder in _support_dir(pytestconfig):
        path = folder / filename
        if path.is_file():
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
    raise RuntimeError(f"{filename} not found in the support folder")


@pytest.fixture(scope="session")
def phantoms(pytestconfig: pytest.Config) -> ModuleType:
    """The official ``phantoms.py`` (support file), imported in the grader."""
    return _load(pytestconfig, "phantoms.py", "_a5_grader_phantoms")


@pytest.fixture(scope="session")
def grader_segmenter(pytestconfig: pytest.Config) -> Any:
    """``segment(images_gan) -> masks``: the grader's own copy of the shipped segmenter
    (official model code, weights read with safetensors), in evaluation mode."""
    import torch

    module = _load(pytestconfig, "segmenter.py", "_a5_grader_segmenter")
    weights = None
    for folder in _support_dir(pytestconfig):
        if (folder / "segmenter.safetensors").is_file():
            weights = folder / "segmenter.safetensors"
            break
    assert weights is not None, "segmenter.safetensors not found in the support folder"
    net = module.load_segmenter(weights)

    def segment(images: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images, np.float32))
        with torch.no_grad():
            return net((x + 1.0) * 0.65).argmax(dim=1).numpy()

    return segment


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the hidden seed and the test's id: reproducible per test."""
    return np.random.default_rng([HIDDEN_SEED, zlib.crc32(request.node.nodeid.encode())])


# ---------------------------------------------------------------- reference definitions


class Ref:
    """The grader's float64 closed forms (numpy only)."""

    @staticmethod
    def softplus(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def sigmoid(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return np.exp(-Ref.softplus(-x))

    @staticmethod
    def d_loss(real: np.ndarray, fake: np.ndarray) -> float:
        return float(Ref.softplus(-real).mean() + Ref.softplus(fake).mean())

    @staticmethod
    def g_loss(fake: np.ndarray) -> float:
        return float(Ref.softplus(-fake).mean())

    @staticmethod
    def mlp_critic_grad(s: np.ndarray, w1: np.ndarray, b1: np.ndarray,
                        w2: np.ndarray) -> np.ndarray:
        """Gradient of ``tanh(s_flat @ W1.T + b1) @ w2`` with respect to s (per sample)."""
        flat = s.reshape(len(s), -1)
        h = np.tanh(flat @ w1.T + b1)
        return (((1 - h**2) * w2) @ w1).reshape(s.shape)

    @staticmethod
    def mlp_critic(s: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray) -> np.ndarray:
        return np.tanh(s.reshape(len(s), -1) @ w1.T + b1) @ w2

    @staticmethod
    def interpolate(real: np.ndarray, fake: np.ndarray, eps: np.ndarray) -> np.ndarray:
        e = eps.reshape(len(eps), *([1] * (real.ndim - 1)))
        return e * real + (1 - e) * fake

    @staticmethod
    def gp_mlp(real: np.ndarray, fake: np.ndarray, eps: np.ndarray, w1: np.ndarray,
               b1: np.ndarray, w2: np.ndarray, lam: float) -> float:
        g = Ref.mlp_critic_grad(Ref.interpolate(real, fake, eps), w1, b1, w2)
        norms = np.sqrt((g.reshape(len(g), -1) ** 2).sum(axis=1))
        return float(lam * np.mean((norms - 1) ** 2))

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
    def scalar(value: Any, what: str) -> float:
        arr = Ref.array(value, what)
        assert arr.shape == (), f"{what} returned shape {arr.shape}, expected a 0-d tensor"
        out = float(arr)
        assert np.isfinite(out), f"{what} returned {out}"
        return out

    # -- the mixture of Gaussians ---------------------------------------------------------

    @staticmethod
    def ring_modes(k: int, radius: float) -> np.ndarray:
        angles = 2 * np.pi * np.arange(k) / k
        return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)

    @staticmethod
    def mixture(n: int, modes: np.ndarray, std: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` points, an equal share per mode; returns (points float32, mode index)."""
        which = np.arange(n) % len(modes)
        rng.shuffle(which)
        pts = modes[which] + std * rng.standard_normal((n, 2))
        return pts.astype(np.float32), which

    @staticmethod
    def mode_scores(samples: np.ndarray, modes: np.ndarray, std: float) -> tuple[int, float, float]:
        """(modes covered, share of samples within 3 std of a mode, median distance to the
        nearest mode). A mode is covered when at least a fifth of its fair share of the
        samples lies within 3 std of it."""
        d = np.linalg.norm(samples[:, None, :] - modes[None], axis=-1)
        nearest, dist = d.argmin(axis=1), d.min(axis=1)
        close = dist < 3 * std
        counts = np.bincount(nearest[close], minlength=len(modes))
        covered = int((counts >= 0.2 * len(samples) / len(modes)).sum())
        return covered, float(close.mean()), float(np.median(dist))


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a value of type {type(value).__name__}"


@pytest.fixture(scope="session")
def expect_value_error() -> Any:
    """``expect(call, what, expected)``: ``call()`` (a call into the worker) must raise
    the student's ``ValueError``; otherwise the test fails saying that ``what`` returned
    a value, or raised another exception, where ``ValueError`` (``expected``) was
    promised. A timeout or a dead worker fails the test with the harness's own message."""
    from autograder.errors import StudentError, StudentTimeout, UnusableValue, WorkerDied

    def expect(call: Any, what: str, expected: str) -> None:
        try:
            value = call()
        except (StudentTimeout, WorkerDied, UnusableValue):
            raise
        except StudentError as exc:
            if exc.type_name == "ValueError":
                return
            raise AssertionError(
                f"{what} raised {exc.type_name} ({exc.message[:160]}); expected ValueError: "
                f"{expected}") from None
        raise AssertionError(f"{what} returned {_describe(value)}; expected ValueError: {expected}")

    return expect


def finite(value: Any, what: str, expected: str) -> np.ndarray:
    """``value`` as a float64 array without nan or inf, or a failure naming ``what``, how
    many values were not finite and what was ``expected``."""
    arr = Ref.array(value, what).astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        kinds = " and ".join(k for k, m in (("nan", np.isnan(arr)), ("inf", np.isinf(arr))) if m.any())
        raise AssertionError(f"{what} returned {kinds} in {int(bad.sum())} of {arr.size} values; "
                             f"expected {expected}")
    return arr


@pytest.fixture(scope="session")
def check_finite() -> Any:
    """``check_finite(value, what, expected)``: see :func:`finite`."""
    return finite


@pytest.fixture(scope="session")
def ref() -> type[Ref]:
    return Ref


# ---------------------------------------------------------------- myocardium rings


def _components(mask: np.ndarray, diagonal: bool) -> tuple[np.ndarray, int]:
    """Connected components of a boolean image (4- or 8-connected): labels 1..n."""
    h, w = mask.shape
    labels = np.zeros((h, w), np.int64)
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if diagonal:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    n = 0
    for i in range(h):
        for j in range(w):
            if mask[i, j] and not labels[i, j]:
                n += 1
                labels[i, j] = n
                queue = deque([(i, j)])
                while queue:
                    a, b = queue.popleft()
                    for da, db in steps:
                        y, x = a + da, b + db
                        if 0 <= y < h and 0 <= x < w and mask[y, x] and not labels[y, x]:
                            labels[y, x] = n
                            queue.append((y, x))
    return labels, n


def _closing(mask: np.ndarray) -> np.ndarray:
    """Binary closing with a 3x3 square (outside the image counts as empty)."""
    p = np.pad(mask, 2)
    h, w = p.shape

    def shifts(a: np.ndarray, op: Any) -> np.ndarray:
        q = np.pad(a, 1, constant_values=(op is np.logical_and))
        out = q[1:h + 1, 1:w + 1].copy()
        for dy in range(3):
            for dx in range(3):
                out = op(out, q[dy:dy + h, dx:dx + w])
        return out

    dilated = shifts(p, np.logical_or)
    return shifts(dilated, np.logical_and)[2:-2, 2:-2]


def plausible_ring(mask: np.ndarray) -> bool:
    """A myocardium ring enclosing the blood pool, in an integer mask (H, W).

    Blood pool (class 1) of 6-200 pixels and myocardium (class 2) of 12-200 pixels; the
    myocardium, after a 3x3 closing (bridges one-pixel gaps), has one 8-connected component
    holding at least 80 % of it, and that component encloses (4-connected holes not
    touching the border) at least half of the blood pool.
    """
    blood, myo = mask == 1, mask == 2
    if not (6 <= blood.sum() <= 200 and 12 <= myo.sum() <= 200):
        return False
    closed = _closing(myo)
    labels, n = _components(closed, diagonal=True)
    if n == 0:
        return False
    sizes = np.bincount(labels.ravel())[1:]
    if sizes.max() < 0.8 * closed.sum():
        return False
    ring = labels == (int(np.argmax(sizes)) + 1)
    outside, m = _components(~ring, diagonal=False)
    edge = set(np.concatenate([outside[0], outside[-1], outside[:, 0], outside[:, -1]]).tolist())
    holes = np.isin(outside, [k for k in range(1, m + 1) if k not in edge])
    return bool(holes.any()) and bool((holes & blood).sum() >= 0.5 * blood.sum())


@pytest.fixture(scope="session")
def ring_check() -> Any:
    return plausible_ring
