"""Assignment 1's own probes: the vectorized yardsticks of the performance tests, and a
recording model that watches your training loop.

The grader runs the yardsticks in a worker that never loads your code and compares your
function's time with theirs (a ratio, so the machine's speed cancels out). You can read
them, and run them yourself to see how fast a vectorized layer is. numpy functions are
bound here at import, before any submission code runs.

``record_training`` runs your ``train()`` on a :class:`RecordingModel` with known losses
and gradients; the grader compares what it saw with the loop that ``train``'s docstring
describes (rows per batch and per epoch, each update, the history).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.probes import probe

_einsum = np.einsum
_pad = np.pad
_sliding = np.lib.stride_tricks.sliding_window_view
_ascontig = np.ascontiguousarray


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
    """Max pooling over a strided view of the pooling windows."""
    windows = _sliding(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride]
    return _ascontig(windows.max(axis=(4, 5)))


class RecordingModel:
    """A stand-in model for ``train()`` that records what the training loop does.

    Row ``i`` of the data holds its id in column 0 (``X[i, 0] == i``; the validation rows
    follow the training rows). ``loss(X, y)`` logs which rows and labels the step saw
    and the parameters at that moment, and returns known values: the batch loss is the
    mean of ``row_loss`` over its rows and each gradient is ``directions[name]`` times
    that loss. ``predict`` (and ``loss(X)``) answer right or wrong for each row as the
    table ``correct[steps so far, row]`` says, so the accuracy after each epoch is known.
    """

    def __init__(self, params: dict[str, np.ndarray], directions: dict[str, np.ndarray],
                 labels: np.ndarray, row_loss: np.ndarray, correct: np.ndarray,
                 num_classes: int) -> None:
        self.params = {name: np.array(value, dtype=np.float64) for name, value in params.items()}
        self._directions = {name: np.array(d, dtype=np.float64) for name, d in directions.items()}
        self._labels = np.asarray(labels)
        self._row_loss = np.asarray(row_loss, dtype=np.float64)
        self._correct = np.asarray(correct, dtype=bool)
        self._classes = num_classes
        self.steps: list[dict[str, Any]] = []
        self.evaluations: list[int] = []  # steps taken when predict / loss(X) was called

    def _rows(self, X: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(X)[:, 0]).astype(np.int64)

    def _predict_rows(self, rows: np.ndarray) -> np.ndarray:
        self.evaluations.append(len(self.steps))
        right = self._correct[len(self.steps) % len(self._correct), rows]
        return np.where(right, self._labels[rows], (self._labels[rows] + 1) % self._classes)

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        rows = self._rows(X)
        if y is None:
            return np.eye(self._classes)[self._predict_rows(rows)]
        self.steps.append({
            "rows": rows.tolist(),
            "labels": np.asarray(y).astype(np.int64).tolist(),
            "params": {name: np.array(v, dtype=np.float64) for name, v in self.params.items()},
        })
        loss = float(np.mean(self._row_loss[rows]))
        return loss, {name: d * loss for name, d in self._directions.items()}

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._predict_rows(self._rows(X))


@probe("record_training", calls=0)
def record_training(train_fn: Any, X: np.ndarray, y: np.ndarray, X_val: np.ndarray,
                    y_val: np.ndarray, params: dict[str, np.ndarray],
                    directions: dict[str, np.ndarray], row_loss: np.ndarray,
                    correct: np.ndarray, num_classes: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``train_fn(model, X, y, X_val, y_val, **kwargs)`` on a :class:`RecordingModel`;
    returns the history, every step the model saw, its final parameters, and whether
    ``model.params`` is still the dict the model started with."""
    labels = np.concatenate([np.asarray(y), np.asarray(y_val)])
    model = RecordingModel(params, directions, labels, row_loss, correct, num_classes)
    start = model.params
    history = train_fn(model, X, y, X_val, y_val, **kwargs)
    return {
        "history": history,
        "steps": model.steps,
        "evaluations": model.evaluations,
        "final": {name: np.array(v, dtype=np.float64) for name, v in model.params.items()},
        "same_dict": model.params is start,
    }


@probe("numpy_warnings", calls=0)
def numpy_warnings(fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args)`` with numpy's overflow, invalid-value and divide-by-zero errors turned
    into warnings (underflow to zero stays silent, as by default); returns the result and
    the messages of the warnings raised."""
    import warnings

    with warnings.catch_warnings(record=True) as caught, np.errstate(
            over="warn", invalid="warn", divide="warn", under="ignore"):
        warnings.simplefilter("always")
        result = fn(*args)
    return {"result": result, "warnings": [str(w.message) for w in caught]}
