"""Grader-side fixtures for the A4 hidden suite (never shipped to students).

Everything here runs in the grader. ECG records are generated here with the official
``ecg_data.py`` of the support folder, with seeds and heart-rate and noise ranges that
appear in no student file; only the signals (and the training targets) are sent to the
worker. Held-out R peaks never leave this process: the grader decodes the student's
predicted probabilities with its own peak picker and matches them with its own code.

Generated sets are cached twice: in memory for the grading (``functools.lru_cache``) and
as ``.npz`` files in a private folder of the grader's temp directory (mode 0700, owned by
the grader; keyed by the generator's source, neurokit2's version and the parameters), so
that neither a grading nor the next one simulates them again. A folder that is not
private is not used.

Expected values come from :class:`Ref`, the grader's float64 numpy definitions of the
RNN, the cells (torch's equations and gate order), both taggers, the attention, the loss
and the decoder, written from the assignment's docstrings. A module of the student is
checked by loading random weights chosen here into it (by the documented names) and
comparing its output with the reference forward pass of the same weights.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import stat
import sys
import tempfile
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

# Seeds and ranges of the hidden records and of the random test inputs; they appear in no
# student file (students' default heart rates are 55-95 bpm, noise 0.02-0.15).
HIDDEN_SEED = 604_117
HIDDEN_HEART_RATE = (48.0, 118.0)
HIDDEN_NOISE = (0.02, 0.16)
DURATION = 2.0  # seconds per record: T = 100 samples at 50 Hz
N_TRAIN, N_TEST = 128, 48
LN_EPS = 1e-5


# ---------------------------------------------------------------- the official generator


def _generator_path(support: str | None) -> Path:
    here = Path(__file__).resolve().parent
    candidates = [Path(support) / "ecg_data.py"] if support else []
    candidates.append(here.parent.parent / "solutions" / here.name / "ecg_data.py")
    for path in candidates:
        if path.is_file():
            return path
    raise RuntimeError(f"ecg_data.py not found in {[str(c) for c in candidates]}")


@functools.lru_cache(maxsize=4)
def _load_generator(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("_a4_grader_ecg_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ecg_data(pytestconfig: pytest.Config) -> ModuleType:
    """The official ``ecg_data.py`` (support file), imported in the grader."""
    return _load_generator(str(_generator_path(pytestconfig.getoption("ag_support", default=None))))


def _cache_dir() -> Path | None:
    """The grader's private cache folder, or None where it cannot be trusted."""
    path = Path(tempfile.gettempdir()) / f"autograder-a4-ecg-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return path


@functools.lru_cache(maxsize=16)
def make_records(path: str, n: int, duration: float, heart_rate: tuple[float, float],
                 noise: tuple[float, float], seed: int) -> dict[str, Any]:
    """``ecg_data.make_ecg(...)`` as a dict (signals, targets, peaks, fs), from the caches
    when they hold it."""
    source = Path(path).read_bytes()
    try:  # the simulator's version is part of the key (a cheap lookup, no import)
        nk_version = importlib.metadata.version("neurokit2")
    except importlib.metadata.PackageNotFoundError:
        nk_version = "?"
    key = hashlib.sha256(repr((n, duration, heart_rate, noise, seed, nk_version)).encode()
                         + source).hexdigest()
    folder = _cache_dir()
    file = folder / f"{key[:32]}.npz" if folder else None
    if file is not None and file.is_file():
        try:
            with np.load(file, allow_pickle=False) as z:
                peaks = np.split(z["peaks"], z["splits"])
                return {"signals": z["signals"], "targets": z["targets"], "peaks": peaks,
                        "fs": int(z["fs"])}
        except (OSError, ValueError, KeyError):
            pass
    gen = _load_generator(path)
    data = gen.make_ecg(n, duration, heart_rate=heart_rate, noise=noise, seed=seed)
    out = {"signals": data.signals, "targets": data.targets, "peaks": list(data.peaks),
           "fs": int(data.fs)}
    if file is not None:
        tmp = file.with_suffix(f".{os.getpid()}.tmp.npz")
        try:
            np.savez(tmp, signals=data.signals, targets=data.targets, fs=data.fs,
                     peaks=np.concatenate(out["peaks"]).astype(np.int64),
                     splits=np.cumsum([len(p) for p in out["peaks"]])[:-1].astype(np.int64))
            os.replace(tmp, file)
        except OSError:
            tmp.unlink(missing_ok=True)
    return out


@pytest.fixture(scope="session")
def hidden_ecg(pytestconfig: pytest.Config) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training, held-out) records of the convergence tests: 128 and 48 records of 2 s at
    50 Hz, 4 leads, hidden seeds and ranges. Only the held-out signals reach the worker."""
    path = str(_generator_path(pytestconfig.getoption("ag_support", default=None)))
    train = make_records(path, N_TRAIN, DURATION, HIDDEN_HEART_RATE, HIDDEN_NOISE, HIDDEN_SEED + 1)
    test = make_records(path, N_TEST, DURATION, HIDDEN_HEART_RATE, HIDDEN_NOISE, HIDDEN_SEED + 2)
    return train, test


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the hidden seed and the test's id: reproducible per test."""
    return np.random.default_rng([HIDDEN_SEED, zlib.crc32(request.node.nodeid.encode())])


# ---------------------------------------------------------------- reference definitions


def _f64(*arrays: Any) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class Ref:
    """The grader's float64 definitions (numpy only). Inputs are cast to float64."""

    # -- vanilla RNN ----------------------------------------------------------------------

    @staticmethod
    def rnn(x: np.ndarray, h0: np.ndarray, wx: np.ndarray, wh: np.ndarray,
            b: np.ndarray) -> np.ndarray:
        x, h, wx, wh, b = _f64(x, h0, wx, wh, b)
        out = []
        for t in range(x.shape[1]):
            h = np.tanh(np.einsum("nd,dh->nh", x[:, t], wx) + np.einsum("nk,kh->nh", h, wh) + b)
            out.append(h)
        return np.stack(out, axis=1)

    # -- cells (torch's equations and gate order) -----------------------------------------

    @staticmethod
    def lstm_cell(x: np.ndarray, h: np.ndarray, c: np.ndarray, p: dict[str, np.ndarray],
                  prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
        x, h, c = _f64(x, h, c)
        hid = h.shape[1]
        w_ih, w_hh = _f64(p[prefix + "weight_ih"], p[prefix + "weight_hh"])
        g = x @ w_ih.T + h @ w_hh.T
        if prefix + "bias_ih" in p:
            g = g + np.asarray(p[prefix + "bias_ih"], np.float64) + np.asarray(p[prefix + "bias_hh"], np.float64)
        i, f = _sigmoid(g[:, :hid]), _sigmoid(g[:, hid:2 * hid])
        cand, o = np.tanh(g[:, 2 * hid:3 * hid]), _sigmoid(g[:, 3 * hid:])
        c_new = f * c + i * cand
        return o * np.tanh(c_new), c_new

    @staticmethod
    def gru_cell(x: np.ndarray, h: np.ndarray, p: dict[str, np.ndarray],
                 prefix: str = "") -> np.ndarray:
        x, h = _f64(x, h)
        hid = h.shape[1]
        w_ih, w_hh = _f64(p[prefix + "weight_ih"], p[prefix + "weight_hh"])
        gi, gh = x @ w_ih.T, h @ w_hh.T
        if prefix + "bias_ih" in p:
            gi = gi + np.asarray(p[prefix + "bias_ih"], np.float64)
            gh = gh + np.asarray(p[prefix + "bias_hh"], np.float64)
        r = _sigmoid(gi[:, :hid] + gh[:, :hid])
        z = _sigmoid(gi[:, hid:2 * hid] + gh[:, hid:2 * hid])
        n = np.tanh(gi[:, 2 * hid:] + r * gh[:, 2 * hid:])
        return (1.0 - z) * n + z * h

    @staticmethod
    def cell_shapes(cell: str, inp: int, hid: int, bias: bool = True,
                    prefix: str = "") -> dict[str, tuple[int, ...]]:
        g = 4 if cell == "lstm" else 3
        shapes = {f"{prefix}weight_ih": (g * hid, inp), f"{prefix}weight_hh": (g * hid, hid)}
        if bias:
            shapes |= {f"{prefix}bias_ih": (g * hid,), f"{prefix}bias_hh": (g * hid,)}
        return shapes

    # -- the recurrent tagger -------------------------------------------------------------

    @staticmethod
    def rnn_tagger_shapes(cell: str, inp: int, hid: int, layers: int,
                          bidirectional: bool) -> dict[str, tuple[int, ...]]:
        dirs = 2 if bidirectional else 1
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(layers):
            size = inp if layer == 0 else dirs * hid
            shapes |= Ref.cell_shapes(cell, size, hid, True, f"fwd.{layer}.")
            if bidirectional:
                shapes |= Ref.cell_shapes(cell, size, hid, True, f"bwd.{layer}.")
        shapes |= {"head.weight": (1, dirs * hid), "head.bias": (1,)}
        return shapes

    @staticmethod
    def _direction(cell: str, p: dict[str, np.ndarray], prefix: str, x: np.ndarray,
                   mask: np.ndarray, hid: int, reverse: bool) -> np.ndarray:
        n, t_len, _ = x.shape
        h, c = np.zeros((n, hid)), np.zeros((n, hid))
        out = np.zeros((n, t_len, hid))
        for t in (reversed(range(t_len)) if reverse else range(t_len)):
            if cell == "lstm":
                h2, c2 = Ref.lstm_cell(x[:, t], h, c, p, prefix)
            else:
                h2, c2 = Ref.gru_cell(x[:, t], h, p, prefix), c
            keep = mask[:, t, None]
            h, c = np.where(keep, h2, h), np.where(keep, c2, c)
            out[:, t] = h
        return out

    @staticmethod
    def rnn_tagger(p: dict[str, np.ndarray], x: np.ndarray, mask: np.ndarray | None,
                   cell: str, hid: int, layers: int, bidirectional: bool) -> np.ndarray:
        (h,) = _f64(x)
        mask = np.ones(h.shape[:2], bool) if mask is None else np.asarray(mask, bool)
        for layer in range(layers):
            out = Ref._direction(cell, p, f"fwd.{layer}.", h, mask, hid, False)
            if bidirectional:
                back = Ref._direction(cell, p, f"bwd.{layer}.", h, mask, hid, True)
                out = np.concatenate([out, back], axis=-1)
            h = out
        w, b = _f64(p["head.weight"], p["head.bias"])
        return (h @ w.T + b)[..., 0]

    # -- the Transformer ------------------------------------------------------------------

    @staticmethod
    def layernorm(x: np.ndarray, p: dict[str, np.ndarray], prefix: str) -> np.ndarray:
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        g, b = _f64(p[prefix + "weight"], p[prefix + "bias"])
        return (x - mu) / np.sqrt(var + LN_EPS) * g + b

    @staticmethod
    def linear(x: np.ndarray, p: dict[str, np.ndarray], prefix: str) -> np.ndarray:
        w, b = _f64(p[prefix + "weight"], p[prefix + "bias"])
        return np.einsum("...i,oi->...o", x, w) + b

    @staticmethod
    def attention(p: dict[str, np.ndarray], x: np.ndarray, mask: np.ndarray | None,
                  nhead: int, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
        (x,) = _f64(x)
        n, t_len, d = x.shape
        dh = d // nhead
        qkv = Ref.linear(x, p, prefix + "qkv.")
        q, k, v = (qkv[..., j * d:(j + 1) * d].reshape(n, t_len, nhead, dh) for j in range(3))
        scores = np.einsum("nqhe,nkhe->nhqk", q, k) / np.sqrt(dh)
        if mask is not None:
            scores = np.where(np.asarray(mask, bool)[:, None, None, :], scores, -np.inf)
        scores = scores - scores.max(axis=-1, keepdims=True)
        e = np.exp(scores)
        w = e / e.sum(axis=-1, keepdims=True)
        out = np.einsum("nhqk,nkhe->nqhe", w, v).reshape(n, t_len, d)
        return Ref.linear(out, p, prefix + "proj."), w

    @staticmethod
    def attention_shapes(d: int, prefix: str = "") -> dict[str, tuple[int, ...]]:
        return {f"{prefix}qkv.weight": (3 * d, d), f"{prefix}qkv.bias": (3 * d,),
                f"{prefix}proj.weight": (d, d), f"{prefix}proj.bias": (d,)}

    @staticmethod
    def transformer_shapes(inp: int, d: int, layers: int, ff: int, max_len: int,
                           kernel: int = 5) -> dict[str, tuple[int, ...]]:
        shapes = {"inp.weight": (d, inp, kernel), "inp.bias": (d,), "pos.weight": (max_len, d)}
        for k in range(layers):
            b = f"blocks.{k}."
            shapes |= {f"{b}ln1.weight": (d,), f"{b}ln1.bias": (d,), f"{b}ln2.weight": (d,),
                       f"{b}ln2.bias": (d,), f"{b}ff.0.weight": (ff, d), f"{b}ff.0.bias": (ff,),
                       f"{b}ff.2.weight": (d, ff), f"{b}ff.2.bias": (d,)}
            shapes |= Ref.attention_shapes(d, b + "attn.")
        shapes |= {"norm.weight": (d,), "norm.bias": (d,), "out.weight": (1, d), "out.bias": (1,)}
        return shapes

    @staticmethod
    def transformer(p: dict[str, np.ndarray], x: np.ndarray, mask: np.ndarray | None,
                    nhead: int, layers: int) -> np.ndarray:
        (x,) = _f64(x)
        t_len = x.shape[1]
        if mask is not None:
            x = np.where(np.asarray(mask, bool)[..., None], x, 0.0)
        w, b = _f64(p["inp.weight"], p["inp.bias"])
        k = w.shape[2]
        xp = np.pad(x, ((0, 0), (k // 2, k // 2), (0, 0)))
        win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=1)  # (N, T, C, k)
        h = np.einsum("ntcj,ocj->nto", win, w) + b
        h = h + np.asarray(p["pos.weight"], np.float64)[:t_len]
        for k in range(layers):
            b = f"blocks.{k}."
            h = h + Ref.attention(p, Ref.layernorm(h, p, b + "ln1."), mask, nhead, b + "attn.")[0]
            f = np.maximum(Ref.linear(Ref.layernorm(h, p, b + "ln2."), p, b + "ff.0."), 0.0)
            h = h + Ref.linear(f, p, b + "ff.2.")
        return Ref.linear(Ref.layernorm(h, p, "norm."), p, "out.")[..., 0]

    # -- weights ------------------------------------------------------------------------

    @staticmethod
    def random_state(shapes: dict[str, tuple[int, ...]], rng: np.random.Generator,
                     scale: float = 0.5, dtype: Any = np.float32) -> dict[str, np.ndarray]:
        """Random values for every entry: LayerNorm gains near 1, the rest uniform in
        ``[-scale, scale]`` scaled by 1/sqrt(fan-in) for matrices."""
        state = {}
        for name, shape in shapes.items():
            if ".ln" in name or name.startswith("norm."):
                value = rng.uniform(0.5, 1.5, shape) if name.endswith("weight") else \
                    0.2 * rng.standard_normal(shape)
            elif len(shape) == 2 and not name.startswith("pos."):
                value = rng.uniform(-1, 1, shape) * scale * 2.0 / np.sqrt(shape[1])
            else:
                value = rng.uniform(-scale, scale, shape)
            state[name] = value.astype(dtype)
        return state

    # -- loss and decoder ---------------------------------------------------------------

    @staticmethod
    def bce(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None,
            pos_weight: float = 1.0) -> float:
        z, y = _f64(logits, targets)
        log_p = -np.logaddexp(0.0, -z)  # log sigmoid(z)
        log_q = -np.logaddexp(0.0, z)  # log (1 - sigmoid(z))
        per = -(pos_weight * y * log_p + (1.0 - y) * log_q)
        m = np.ones_like(per) if mask is None else np.asarray(mask, np.float64)
        return float((per * m).sum() / m.sum())

    @staticmethod
    def pick_peaks(probs: np.ndarray, threshold: float = 0.5,
                   min_distance: int = 10) -> list[np.ndarray]:
        """The decoder of the docstring, vectorized candidates and a greedy suppression."""
        out = []
        for p in np.asarray(probs, np.float64):
            left = np.concatenate([[-np.inf], p[:-1]])
            right = np.concatenate([p[1:], [-np.inf]])
            cand = np.flatnonzero((p >= threshold) & (p > left) & (p >= right))
            order = cand[np.lexsort((cand, -p[cand]))]
            kept: list[int] = []
            for t in order:
                if not kept or np.min(np.abs(np.asarray(kept) - t)) >= min_distance:
                    kept.append(int(t))
            out.append(np.sort(np.asarray(kept, np.int64)))
        return out

    @staticmethod
    def f1(pred: list[np.ndarray], true: list[np.ndarray], tol: int, length: int,
           edge: int = 0) -> float:
        """Trigger F1: each true peak matched to the nearest unused prediction within
        ``tol`` samples (written independently of ecg_data.match_peaks). Unmatched peaks
        and predictions within ``edge`` samples of either end of a record (a beat cut by
        the window) count neither way."""
        tp = fp = fn = 0

        def inside(t: int) -> bool:
            return edge <= t < length - edge

        for p, q in zip(pred, true, strict=True):
            free = [int(v) for v in np.sort(np.asarray(p, np.int64))]
            for peak in np.sort(np.asarray(q, np.int64)):
                d = np.abs(np.asarray(free, np.int64) - peak)
                if free and d.min() <= tol:
                    free.pop(int(np.argmin(d)))
                    tp += 1
                elif inside(int(peak)):
                    fn += 1
            fp += sum(1 for v in free if inside(v))
        return 2 * tp / max(2 * tp + fp + fn, 1)

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
                             ", expected an array of numbers")

    @staticmethod
    def probabilities(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
        """``value`` as an array of ``shape`` whose entries are probabilities, or a failure
        naming ``what`` and the expectation (logits in their place are named as such)."""
        arr = Ref.array(value, what)
        assert arr.shape == shape, (
            f"{what} returned shape {arr.shape}, expected {shape} (one probability per time point)")
        a = arr.astype(np.float64)
        bad = int((~np.isfinite(a)).sum())
        assert not bad, (f"{what} returned nan or inf in {bad} of {a.size} values; expected "
                         "probabilities in [0, 1]")
        lo, hi = float(a.min()), float(a.max())
        assert lo >= 0.0 and hi <= 1.0, (
            f"{what} returned values outside [0, 1] (min {lo:.3g}, max {hi:.3g}), expected "
            "probabilities: logits? apply torch.sigmoid to the model's output")
        return arr

    @staticmethod
    def assert_logits(what: str, got: Any, expected: Any) -> None:
        """Fail naming ``what`` when logits are expected (the definition leaves [0, 1]) but
        ``got`` stays within [0, 1] and differs from them: a sigmoid at the end of a model.
        Other differences are left to :meth:`assert_close`."""
        expected = np.asarray(expected, np.float64)
        got = Ref.array(got, what)
        if got.shape != expected.shape or not expected.size:
            return
        g = got.astype(np.float64)
        if not np.all(np.isfinite(g)) or g.min() < 0.0 or g.max() > 1.0:
            return
        if expected.min() < -0.05 or expected.max() > 1.05:
            if not np.allclose(g, expected, rtol=1e-3, atol=1e-4):
                raise AssertionError(
                    f"{what} returned values in [0, 1] only ({g.min():.3g}..{g.max():.3g}) where "
                    f"logits are expected (the definition gives {expected.min():.3g}.."
                    f"{expected.max():.3g}): probabilities? return the logits without a "
                    "sigmoid (bce_loss and predict_proba apply it)")

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


@pytest.fixture(scope="session")
def ref() -> type[Ref]:
    """The grader's reference definitions (see :class:`Ref`)."""
    return Ref


@pytest.fixture
def load_random_state(student: Any) -> Any:
    """``load(module, shapes, rng, what)``: check that ``module``'s state_dict has exactly
    the names and shapes of ``shapes`` (the documented architecture), load random values
    chosen here into it, and return them (name -> float32 array)."""

    def load(module: Any, shapes: dict[str, tuple[int, ...]], rng: np.random.Generator,
             what: str) -> dict[str, np.ndarray]:
        got = student.probe("state_dict", module)
        got_shapes = {k: tuple(np.shape(v)) for k, v in got.items()}
        missing = sorted(set(shapes) - set(got_shapes))
        extra = sorted(set(got_shapes) - set(shapes))
        assert not missing and not extra, (
            f"{what}: its parameters do not follow the documented architecture: "
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


def _padded_batch(rng: np.random.Generator, lengths: list[int], t_len: int, c: int,
                  fill: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((len(lengths), t_len, c)).astype(np.float32)
    mask = np.arange(t_len)[None, :] < np.asarray(lengths)[:, None]
    x[~mask] = fill
    return x, mask


@pytest.fixture(scope="session")
def padded_batch() -> Any:
    """``padded_batch(rng, lengths, T, C, fill)``: random float32 inputs (N, T, C) and a
    bool mask with ``lengths`` real points; the padding holds ``fill``."""
    return _padded_batch
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
